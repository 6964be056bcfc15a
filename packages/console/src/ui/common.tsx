// Small pieces every page uses: state badges, error and "not available" notes, a polling hook.
import { useEffect, useRef, useState } from "react";
import { describeError, isUnavailable } from "../api/errors.js";
import { tone } from "./format.js";

export function StateBadge({ label }: { label: string }) {
  return <span className={`state state-${tone(label)}`}>{label}</span>;
}

export function ErrorNote({ error }: { error: unknown }) {
  return (
    <p role="alert" className="error">
      {describeError(error)}
    </p>
  );
}

/** For pages whose RPCs a server may not offer yet (UNIMPLEMENTED or NOT_FOUND). */
export function FailureOrUnavailable({ error, what }: { error: unknown; what: string }) {
  if (isUnavailable(error)) {
    return (
      <p role="status" className="note">
        {what} are not available on this server.
      </p>
    );
  }
  return <ErrorNote error={error} />;
}

export interface Polled<T> {
  data: T | undefined;
  error: unknown;
  reload(): void;
}

/**
 * Calls `load` now and again `intervalMs` after each answer (never overlapping: a slow server is
 * not piled up on), paused while the tab is hidden. `deps` restart it.
 */
export function usePolling<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], intervalMs = 0): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const ac = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const value = await loadRef.current(ac.signal);
        if (ac.signal.aborted) return;
        setData(value);
        setError(undefined);
      } catch (err) {
        if (ac.signal.aborted) return;
        setError(err);
      }
      if (intervalMs > 0 && !ac.signal.aborted) timer = setTimeout(next, intervalMs);
    };
    const next = () => {
      if (document.hidden) document.addEventListener("visibilitychange", resume, { once: true });
      else void run();
    };
    const resume = () => next();
    void run();
    return () => {
      ac.abort();
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", resume);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick, intervalMs]);
  return { data, error, reload: () => setTick((n) => n + 1) };
}
