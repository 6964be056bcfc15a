// Graceful shutdown: closers run once, in reverse order of registration (stores were opened first
// and close last), each even when an earlier one failed.
import type { Logger } from "pino";

export interface Closer {
  add(name: string, close: () => Promise<void> | void): void;
  close(): Promise<void>;
  readonly closed: boolean;
}

export function createCloser(logger?: Logger): Closer {
  const steps: Array<{ name: string; close: () => Promise<void> | void }> = [];
  let closing: Promise<void> | undefined;
  return {
    add(name, close) {
      steps.push({ name, close });
    },
    get closed() {
      return closing !== undefined;
    },
    close() {
      closing ??= (async () => {
        for (const step of [...steps].reverse()) {
          try {
            await step.close();
          } catch (err) {
            logger?.error({ err, step: step.name }, "shutdown step failed");
          }
        }
      })();
      return closing;
    },
  };
}

/** Calls `onSignal` on the first SIGTERM or SIGINT; a second signal exits at once. */
export function handleSignals(onSignal: (signal: string) => Promise<void>, logger?: Logger): void {
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    count += 1;
    if (count > 1) {
      logger?.warn({ signal }, "second signal: exiting now");
      process.exit(130);
    }
    logger?.info({ signal }, "shutting down");
    onSignal(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        logger?.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}
