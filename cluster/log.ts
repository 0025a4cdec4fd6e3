/** Structured logs: one JSON line per event, every line naming the process's component and node. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(component: string, level: string, bindings: Record<string, string> = {}): Logger {
  return pino({ level, base: { component, ...bindings } });
}
