// Sign in with an API key: checked with one call before it is kept (in this tab only).
import { useState } from "react";
import { Code } from "@connectrpc/connect";
import { createClients } from "../api/clients.js";
import { codeOf, describeError } from "../api/errors.js";

export function SignInPage({ notice, onSignedIn }: { notice?: string; onSignedIn(key: string): void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError("Enter an API key.");
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await createClients(trimmed).clusters.listClusters({ pageSize: 1 });
      onSignedIn(trimmed);
    } catch (err) {
      setError(
        codeOf(err) === Code.Unauthenticated
          ? "That API key was not accepted: it is wrong, revoked or expired. Check it and try again."
          : describeError(err),
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="sign-in">
      <h1>Sign in to Corral</h1>
      {notice && (
        <p role="status" className="note">
          {notice}
        </p>
      )}
      <form onSubmit={submit}>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="corral_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-describedby="api-key-help"
        />
        <p id="api-key-help" className="help">
          The key is kept in this browser tab only, and forgotten when the tab closes. <code>corral dev</code> prints one, or
          create one with <code>corral key create</code>.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
