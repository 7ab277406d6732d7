/**
 * pino loggers with fixed bindings. Every participant logs JSON to stdout (or a given stream);
 * children add `hostId`, `lattice`, `actor` so log pipelines can filter without parsing text.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

import type { LogLevel } from '../options/index.ts';

export { LogLevels, type LogLevel } from '../options/index.ts';

/** The root logger of a process component (`component` is e.g. `host`, `gateway`, `cli`). */
export function createLogger(options: { component: string; level?: LogLevel; destination?: DestinationStream }): Logger {
  return pino(
    { level: options.level ?? 'info', base: { component: options.component }, timestamp: pino.stdTimeFunctions.isoTime },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
