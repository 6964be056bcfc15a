// The SDK's logger: pino, quiet by default in libraries, level from CORRAL_LOG_LEVEL; JSON lines,
// or plain readable lines with format "pretty" (what `corral runner start` uses on a terminal).
import { pino, type Logger } from "pino";
import { prettyDestination, type LogFormat } from "./log-format.js";

export type { Logger, LogFormat };

export function createSdkLogger(
  name: string,
  level = process.env.CORRAL_LOG_LEVEL ?? "info",
  options: { format?: LogFormat; out?: { write(text: string): unknown } } = {},
): Logger {
  if (options.format === "pretty") return pino({ name, level }, prettyDestination(options.out));
  return options.out ? pino({ name, level }, { write: (line: string) => void options.out!.write(line) }) : pino({ name, level });
}
