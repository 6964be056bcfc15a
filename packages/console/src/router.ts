// A tiny client-side router over the History API: the console's pages are a handful of paths
// (see server-kit's console-files.ts, which answers index.html for them).
import { useEffect, useState } from "react";

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function navigate(to: string): void {
  if (to === window.location.pathname + window.location.search) return;
  window.history.pushState(null, "", to);
  listeners.forEach((l) => l());
}

export function useLocation(): { path: string; search: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return { path: window.location.pathname, search: new URLSearchParams(window.location.search) };
}

export type Route =
  | { page: "jobs" }
  | { page: "job"; id: string }
  | { page: "clusters" }
  | { page: "cluster"; slug: string }
  | { page: "keys" }
  | { page: "hosts" }
  | { page: "releases" }
  | { page: "unknown" };

/** Pure: which page a path shows. */
export function matchRoute(path: string): Route {
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const [first, second] = parts;
  if (parts.length === 0 || (first === "jobs" && parts.length === 1)) return { page: "jobs" };
  if (first === "jobs" && second && parts.length === 2) return { page: "job", id: second };
  if (first === "clusters" && parts.length === 1) return { page: "clusters" };
  if (first === "clusters" && second && parts.length === 2) return { page: "cluster", slug: second };
  if (first === "keys" && parts.length === 1) return { page: "keys" };
  if (first === "hosts" && parts.length === 1) return { page: "hosts" };
  if (first === "releases" && parts.length === 1) return { page: "releases" };
  return { page: "unknown" };
}
