// The SDK's logger: pino, quiet by default in libraries, level from CORRAL_LOG_LEVEL.
import { pino, type Logger } from "pino";

export type { Logger };

export function createSdkLogger(name: string, level = process.env.CORRAL_LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level });
}
