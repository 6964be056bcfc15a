// The team's API keys: list, create (the secret is shown once), revoke.
import { useState } from "react";
import { useSession } from "../api/context.js";
import { ErrorNote, StateBadge, usePolling } from "../ui/common.js";
import { formatTime } from "../ui/format.js";

export function KeysPage() {
  const session = useSession();
  const keys = usePolling((signal) => session.clients.apiKeys.listApiKeys({ pageSize: 1000 }, { signal }), []);
  const [name, setName] = useState("");
  const [created, setCreated] = useState<{ name: string; key: string }>();
  const [confirming, setConfirming] = useState<string>();
  const [error, setError] = useState<unknown>();

  async function create(e: React.FormEvent) {
    e.preventDefault();
    setError(undefined);
    try {
      const res = await session.clients.apiKeys.createApiKey({ name: name.trim() });
      setCreated({ name: res.apiKey?.name ?? name, key: res.key });
      setName("");
      keys.reload();
    } catch (err) {
      setError(err);
    }
  }

  async function revoke(id: string) {
    setError(undefined);
    setConfirming(undefined);
    try {
      await session.clients.apiKeys.revokeApiKey({ id });
      keys.reload();
    } catch (err) {
      setError(err);
    }
  }

  return (
    <>
      <h1>API keys</h1>
      <form className="inline-form" onSubmit={create} aria-label="Create an API key">
        <label htmlFor="key-name">New key name</label>
        <input id="key-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
        <button type="submit">Create key</button>
      </form>
      {created && (
        <div role="status" className="note secret">
          <p>
            Key <strong>{created.name}</strong> created. Copy it now: it is not shown again.
          </p>
          <code data-testid="new-key">{created.key}</code>
        </div>
      )}
      {error !== undefined && <ErrorNote error={error} />}
      {keys.error !== undefined && <ErrorNote error={keys.error} />}
      {keys.data && (
        <table className="list" aria-label="API keys">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">ID</th>
              <th scope="col">Created</th>
              <th scope="col">State</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.data.apiKeys.map((k) => (
              <tr key={k.id} data-key-id={k.id}>
                <td>{k.name}</td>
                <td>
                  <code>{k.id}</code>
                </td>
                <td>{formatTime(k.createTime)}</td>
                <td>
                  <StateBadge label={k.revoked ? `revoked ${formatTime(k.revokeTime)}` : "active"} />
                </td>
                <td>
                  {!k.revoked &&
                    (confirming === k.id ? (
                      <>
                        <button type="button" className="danger" onClick={() => void revoke(k.id)}>
                          Confirm revoke {k.name}
                        </button>{" "}
                        <button type="button" className="quiet" onClick={() => setConfirming(undefined)}>
                          Keep
                        </button>
                      </>
                    ) : (
                      <button type="button" onClick={() => setConfirming(k.id)}>
                        Revoke {k.name}
                      </button>
                    ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
