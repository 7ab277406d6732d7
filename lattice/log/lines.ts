/** Log lines as `trellis logs` shows them: decoded from the pino JSON, printed for people. */
import { HOST_LOG_TOKEN, type Subjects } from '../subjects/index.ts';

/** A pino line with the bindings Trellis sets (any other fields pass through). */
export interface LogLine {
  time?: string;
  level?: number;
  msg?: string;
  component?: string;
  hostId?: string;
  lattice?: string;
  actor?: string;
  version?: string;
  invocationId?: string;
  traceId?: string;
  guest?: boolean;
  [field: string]: unknown;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const utf8 = new TextDecoder();

/** Decode one published line; undefined when it is not a JSON object (never throws). */
export function decodeLogLine(bytes: Uint8Array): LogLine | undefined {
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

const SHOWN = new Set(['time', 'level', 'msg', 'component', 'hostId', 'lattice', 'actor', 'version', 'invocationId', 'traceId', 'guest', 'pid', 'hostname']);

/**
 * One readable line: `time LEVEL host actor@version [invocation trace] message key=value...`.
 * Host ids are nkeys (56 characters); their last 8 say which host at a glance.
 */
export function formatLogLine(line: LogLine): string {
  const level = LEVELS[line.level ?? 30] ?? String(line.level);
  const host = typeof line.hostId === 'string' ? line.hostId.slice(-8) : (line.component ?? '-');
  const who = line.actor ? `${line.actor}${line.version ? `@${line.version}` : ''}` : (line.component ?? '');
  const ids = line.invocationId || line.traceId ? ` [${line.invocationId ? String(line.invocationId).slice(0, 8) : '-'} ${line.traceId ? String(line.traceId).slice(0, 16) : '-'}]` : '';
  const extra = Object.entries(line)
    .filter(([k, v]) => !SHOWN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${line.time ?? ''} ${level.padEnd(5)} ${host} ${who}${ids}${line.guest ? ' guest:' : ''} ${line.msg ?? ''}${extra ? ` ${extra}` : ''}`;
}

/** The subject filter of `trellis logs [actor] [--host h]`. */
export function logFilterSubject(subjects: Subjects, filter: { actor?: string; host?: string }): string {
  return subjects.logs({ participant: filter.host, actor: filter.actor });
}

export { HOST_LOG_TOKEN };
