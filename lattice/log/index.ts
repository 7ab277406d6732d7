/**
 * pino loggers with fixed bindings. Every participant logs JSON to stdout (or a given stream);
 * children add `hostId`, `lattice`, `actor` so log pipelines can filter without parsing text.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/** Log levels accepted by options and flags. */
export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LogLevels)[number];

/** The root logger of a process component (`component` is e.g. `host`, `gateway`, `cli`). */
export function createLogger(options: { component: string; level?: LogLevel; destination?: DestinationStream }): Logger {
  return pino(
    { level: options.level ?? 'info', base: { component: options.component }, timestamp: pino.stdTimeFunctions.isoTime },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
