/**
 * pino loggers with fixed bindings. Every participant logs JSON to stdout (or a given stream);
 * children add `hostId`, `lattice`, `actor`, `version` (and guest lines `invocationId`,
 * `traceId`) so log pipelines can filter without parsing text. A participant may also publish
 * every line to the lattice (see sink.ts), where `trellis logs` reads them from all hosts.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

import type { LogLevel } from '../options/index.ts';
import type { LatticeLogSink } from './sink.ts';

export { LogLevels, type LogLevel } from '../options/index.ts';
export { LatticeLogSink, ensureLogStream, LOG_RETENTION } from './sink.ts';
export { decodeLogLine, formatLogLine, logFilterSubject, type LogLine } from './lines.ts';

/**
 * The root logger of a process component (`component` is e.g. `host`, `gateway`, `cli`). With
 * `lattice`, every line also goes to that sink (it publishes once attached to a connection).
 */
export function createLogger(options: { component: string; level?: LogLevel; destination?: DestinationStream; lattice?: LatticeLogSink }): Logger {
  const destination = options.destination ?? pino.destination({ fd: 1, sync: false });
  const level = options.level ?? 'info';
  return pino(
    { level, base: { component: options.component }, timestamp: pino.stdTimeFunctions.isoTime },
    options.lattice ? pino.multistream([{ stream: destination, level }, { stream: options.lattice, level }]) : destination,
  );
}
