// The console's frame: sign-in gate, navigation, and the page the path names.
import { useMemo, useState } from "react";
import { Code } from "@connectrpc/connect";
import { createClients } from "./api/clients.js";
import { SessionContext, type Session } from "./api/context.js";
import { codeOf } from "./api/errors.js";
import { forgetApiKey, readApiKey, saveApiKey } from "./api/session.js";
import { matchRoute, navigate, useLocation } from "./router.js";
import { SignInPage } from "./pages/sign-in-page.js";
import { JobsPage } from "./pages/jobs-page.js";
import { JobPage } from "./pages/job-page.js";
import { ClustersPage } from "./pages/clusters-page.js";
import { ClusterPage } from "./pages/cluster-page.js";
import { KeysPage } from "./pages/keys-page.js";
import { HostsPage } from "./pages/hosts-page.js";
import { ReleasesPage } from "./pages/releases-page.js";

const sections = [
  { path: "/jobs", label: "Jobs", match: ["jobs", "job"] },
  { path: "/clusters", label: "Clusters", match: ["clusters", "cluster"] },
  { path: "/hosts", label: "Hosts", match: ["hosts"] },
  { path: "/releases", label: "Releases", match: ["releases"] },
  { path: "/keys", label: "API keys", match: ["keys"] },
];

export function Link({ to, children, className }: { to: string; children: React.ReactNode; className?: string }) {
  return (
    <a
      href={to}
      className={className}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

export function App() {
  const [apiKey, setApiKey] = useState(readApiKey);
  const [notice, setNotice] = useState<string>();
  const { path } = useLocation();
  const route = matchRoute(path);

  const session = useMemo<Session | undefined>(() => {
    if (!apiKey) return undefined;
    return {
      clients: createClients(apiKey),
      signOut(message) {
        forgetApiKey();
        setNotice(message);
        setApiKey(undefined);
      },
    };
  }, [apiKey]);

  if (!session) {
    return (
      <SignInPage
        notice={notice}
        onSignedIn={(key) => {
          saveApiKey(key);
          setNotice(undefined);
          setApiKey(key);
        }}
      />
    );
  }

  return (
    <SessionContext.Provider value={session}>
      <header className="top">
        <Link to="/jobs" className="brand">
          Corral
        </Link>
        <nav aria-label="Sections">
          <ul>
            {sections.map((s) => (
              <li key={s.path}>
                <Link to={s.path} className={s.match.includes(route.page) ? "current" : undefined}>
                  {s.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" className="quiet" onClick={() => session.signOut()}>
          Sign out
        </button>
      </header>
      <main>
          {route.page === "jobs" && <JobsPage />}
          {route.page === "job" && <JobPage key={route.id} id={route.id} />}
          {route.page === "clusters" && <ClustersPage />}
          {route.page === "cluster" && <ClusterPage key={route.slug} slug={route.slug} />}
          {route.page === "keys" && <KeysPage />}
          {route.page === "hosts" && <HostsPage />}
          {route.page === "releases" && <ReleasesPage />}
          {route.page === "unknown" && (
            <>
              <h1>Page not found</h1>
              <p>
                There is no page at this address. <Link to="/jobs">Go to jobs</Link>.
              </p>
            </>
          )}
      </main>
    </SessionContext.Provider>
  );
}

/** Signs out when `err` says the key is no longer accepted; returns whether it did. */
export function signOutIfUnauthenticated(session: Session, err: unknown): boolean {
  if (codeOf(err) !== Code.Unauthenticated) return false;
  session.signOut("Your API key is no longer accepted (revoked?). Sign in again.");
  return true;
}
