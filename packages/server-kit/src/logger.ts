// Structured JSON logs (pino). Level from LOG_LEVEL; tests default to warnings only.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(service: string, level?: string): Logger {
  const fallback = process.env.VITEST ? "warn" : "info";
  return pino({
    name: service,
    level: level ?? process.env.LOG_LEVEL ?? fallback,
    base: { service },
    // Nothing that reaches a log line may carry a key: redact the usual places just in case.
    redact: ["authorization", "*.authorization", "apiKey", "*.apiKey", "key", "*.key"],
  });
}
