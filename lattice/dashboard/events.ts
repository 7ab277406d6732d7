/**
 * Lattice events as dashboard rows: a one-line summary and a level per event kind. Read
 * leniently on purpose: the dashboard shows every CloudEvent of ours, including kinds newer than
 * this code (canary events, trace or log events), with a generic summary instead of dropping them.
 */
import { EVENT_TYPE_PREFIX, isRecord } from '../wire/index.ts';

export type EventLevel = 'info' | 'warn' | 'error';

/** One row of the events list. */
export interface EventRow {
  id: string;
  time: string;
  kind: string;
  source: string;
  level: EventLevel;
  summary: string;
}

/** Kinds that are not news: the heartbeat carries inventories (the host cards show them). */
const QUIET = new Set(['host_heartbeat']);
const ERRORS = new Set(['actor_start_failed', 'reconcile_failed', 'canary_rolled_back', 'canary_aborted']);
const WARNINGS = new Set(['host_stopped', 'actor_stopped', 'provider_stopped', 'provider_restarted', 'canary_paused', 'app_deleted']);

const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

/** The row of a parsed CloudEvent, or undefined for what is not one of ours (or not news). */
export function eventRow(event: Record<string, unknown>, hostName: (id: string) => string = (id) => id): EventRow | undefined {
  if (event.specversion !== '1.0' || typeof event.type !== 'string' || !event.type.startsWith(EVENT_TYPE_PREFIX)) return undefined;
  const kind = event.type.slice(EVENT_TYPE_PREFIX.length);
  if (QUIET.has(kind)) return undefined;
  const data = isRecord(event.data) ? event.data : {};
  return {
    id: str(event.id) || `${kind}-${str(event.time)}`,
    time: str(event.time) || new Date().toISOString(),
    kind,
    source: str(event.source),
    level: ERRORS.has(kind) || /fail|error/.test(kind) ? 'error' : WARNINGS.has(kind) ? 'warn' : 'info',
    summary: summarize(kind, data, hostName),
  };
}

function summarize(kind: string, d: Record<string, unknown>, hostName: (id: string) => string): string {
  const on = d.hostId ? ` on ${hostName(str(d.hostId))}` : '';
  const av = d.actor ? `${str(d.actor)}${d.version ? `@${str(d.version)}` : ''}` : '';
  const because = d.reason ? `: ${str(d.reason)}` : '';
  switch (kind) {
    case 'host_started':
      return `host ${str(d.name) || hostName(str(d.hostId))} started${labelText(d.labels)}`;
    case 'host_stopped':
      return `host ${hostName(str(d.hostId))} stopped${because}`;
    case 'labels_changed':
      return `labels of ${hostName(str(d.hostId))} now${labelText(d.labels) || ' none'}`;
    case 'actor_started':
      return `${av} started${on} (${str(d.instances)} instance${d.instances === 1 ? '' : 's'})`;
    case 'actor_stopped':
      return `${av} stopped${on}${because}`;
    case 'actor_start_failed':
      return `${av} failed to start${on}: ${isRecord(d.error) ? `${str(d.error.message)} [${str(d.error.code)}]` : 'unknown error'}`;
    case 'provider_started':
    case 'provider_stopped':
    case 'provider_restarted':
      return `provider ${str(d.provider)} ${kind.slice('provider_'.length)}${on}${because}`;
    case 'app_deployed':
    case 'app_updated':
    case 'app_deleted':
      return `app ${str(d.app)} revision ${str(d.revision)} ${kind.slice('app_'.length)}`;
    case 'actor_placed':
      return `${av} → ${str(d.instances)} instance${d.instances === 1 ? '' : 's'}${on} (was ${str(d.previous)}, app ${str(d.app)})`;
    case 'actor_replaced':
      return `${av} placed again${on} (${str(d.instances)})${because}`;
    case 'reconcile_failed':
      return `reconciling app ${str(d.app)} failed${because}${d.code ? ` [${str(d.code)}]` : ''}`;
    default:
      if (kind.startsWith('canary_')) {
        return `canary ${str(d.actor)} ${str(d.canary)}: ${kind.slice('canary_'.length).replace('_', ' ')}, step ${str(d.step)} at ${str(d.weight)}%${because}`;
      }
      return `${kind.replaceAll('_', ' ')}${av ? ` ${av}` : ''}${on}${because}`;
  }
}

function labelText(labels: unknown): string {
  if (!isRecord(labels)) return '';
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${str(v)}`);
  return pairs.length ? ` (${pairs.join(', ')})` : '';
}
