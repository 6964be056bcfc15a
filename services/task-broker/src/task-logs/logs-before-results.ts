// A session's log lines reach job-service before its results: a runner sends a task's last lines
// just before the task's result, and a follower of the job's logs ends when the job ends, so the
// result waits (briefly, see TaskLogForwarder.flushed) for the lines sent before it. Wraps the
// result reporter; sessions with no lines on their way report at once.
import type { ResultReporter } from "../session/result-reporter.js";
import type { RunnerSession } from "../runner-session.js";
import type { TaskLogForwarder } from "./log-forwarder.js";

export function reportAfterLogs(reporter: ResultReporter, logs: Pick<TaskLogForwarder, "pending" | "flushed">): ResultReporter {
  /** Results of each session waiting for its lines, and who waits for none to be left. */
  const waiting = new Map<RunnerSession, number>();
  const idleWaiters = new Map<RunnerSession, () => void>();
  return {
    ...reporter,
    report(session, decision) {
      if (!logs.pending(session)) return reporter.report(session, decision);
      waiting.set(session, (waiting.get(session) ?? 0) + 1);
      void logs.flushed(session).then(() => {
        reporter.report(session, decision);
        const left = (waiting.get(session) ?? 1) - 1;
        if (left > 0) return void waiting.set(session, left);
        waiting.delete(session);
        const idle = idleWaiters.get(session);
        idleWaiters.delete(session);
        if (idle) reporter.whenIdle(session, idle);
      });
    },
    whenIdle(session, fn) {
      if ((waiting.get(session) ?? 0) === 0) reporter.whenIdle(session, fn);
      else idleWaiters.set(session, fn);
    },
  };
}
