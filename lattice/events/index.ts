/**
 * The lattice's event history: a bounded JetStream stream over the event subjects, so
 * `trellis events --since` shows what happened before one looked. Heartbeats (a full inventory
 * per host every few seconds) are left out of the stream: they would push everything else out
 * of its bounds, and they say nothing the hosts' current state does not.
 */
import type { NatsConnection } from 'nats';
import { EventTypes, type EventType, type Subjects } from '../subjects/index.ts';
import { ensureStream, type Retention } from '../streams/index.ts';
import type { LatticeEvent } from '../wire/index.ts';

/** Default retention of the event stream: a week, at most 20,000 events of at most 64 KiB. */
export const EVENT_RETENTION: Retention = { maxAgeMs: 7 * 86_400_000, maxMessages: 20_000, maxMessageBytes: 64 * 1024 };

/** Event types the stream keeps. */
export const KEPT_EVENT_TYPES: readonly EventType[] = EventTypes.filter((t) => t !== 'host_heartbeat');

/** Create the lattice's event stream if missing (hosts do at start; needs JetStream). */
export function ensureEventStream(nc: NatsConnection, subjects: Subjects, retention: Retention = EVENT_RETENTION): Promise<void> {
  return ensureStream(nc, subjects.streams.events, KEPT_EVENT_TYPES.map((t) => subjects.event(t)), retention);
}

/** Short ids (nkeys are 56 characters) in a readable event line. */
const short = (v: unknown) => (typeof v === 'string' && /^N[A-Z0-9]{55}$/.test(v) ? v.slice(-8) : typeof v === 'string' ? v : JSON.stringify(v));

/** One readable line per event: `time kind key=value...` with the data's scalar fields. */
export function formatEvent(event: LatticeEvent): string {
  const data = event.data as unknown as Record<string, unknown>;
  const fields = Object.entries(data)
    .filter(([k, v]) => v !== undefined && k !== 'actors' && k !== 'providers')
    .map(([k, v]) => `${k}=${short(v)}`)
    .join(' ');
  return `${event.time} ${event.kind.padEnd(18)} ${fields}`;
}
