/**
 * Lattice events as CloudEvents 1.0 (structured JSON mode): one discriminated union over
 * `type`, one encoder, one decoder. Consumers switch on `type` and get typed `data`.
 */
import { randomUUID } from 'node:crypto';
import { TrellisError } from '../errors/index.ts';
import { EventTypes, type EventType } from '../subjects/index.ts';
import { decodeJson, encodeJson, isRecord } from './codec.ts';
import type { CanaryEventPayload } from './canary.ts';
import type { HostInventory } from './control.ts';
import { anyMap, fields, integer, list, map, optional, string, type Check } from './schema.ts';

/** A canary event's data: the run as it is after the decision, and who decided (leader or `cli`). */
export type CanaryEventData = CanaryEventPayload & { by: string };

/** CloudEvents type prefix: `dev.trellis.<event>`. */
export const EVENT_TYPE_PREFIX = 'dev.trellis.';

/** Typed payloads per event type. */
export interface EventData {
  host_started: { hostId: string; name: string; labels: Record<string, string>; version: string };
  host_stopped: { hostId: string; reason: string };
  host_heartbeat: HostInventory;
  labels_changed: { hostId: string; labels: Record<string, string> };
  actor_started: { hostId: string; actor: string; version: string; digest: string; instances: number };
  actor_stopped: { hostId: string; actor: string; version: string; reason: string };
  actor_start_failed: { hostId: string; actor: string; version: string; error: { code: string; message: string } };
  provider_started: { hostId: string; provider: string };
  provider_stopped: { hostId: string; provider: string; reason: string };
  provider_restarted: { hostId: string; provider: string; restarts: number; reason: string };
  /** The reconciler's decisions (emitted by the leader; `leader` is its participant id). */
  app_deployed: { app: string; revision: number; leader: string };
  app_updated: { app: string; revision: number; previousRevision?: number; leader: string };
  app_deleted: { app: string; revision: number; leader: string };
  /** An app's instances of actor@version on one host were set to `instances` (0: removed). */
  actor_placed: { app: string; revision: number; hostId: string; actor: string; version: string; instances: number; previous: number; leader: string };
  /** Instances lost with a dead (or held-out) host, or of an old version, placed again. */
  actor_replaced: { app: string; revision: number; actor: string; version: string; hostId: string; instances: number; reason: string; leader: string };
  reconcile_failed: { app: string; revision?: number; reason: string; code?: string; hostId?: string; actor?: string; retryInMs?: number; leader: string };
  /** Canary decisions (lattice/canary-controller); the rollback's reason carries the numbers. */
  canary_started: CanaryEventData;
  canary_step: CanaryEventData;
  canary_paused: CanaryEventData;
  canary_promoted: CanaryEventData;
  canary_rolled_back: CanaryEventData;
  canary_aborted: CanaryEventData;
}

/** One lattice event, CloudEvents 1.0 attributes plus typed data. */
export type LatticeEvent = {
  [K in EventType]: {
    specversion: '1.0';
    id: string;
    source: string;
    type: `${typeof EVENT_TYPE_PREFIX}${K}`;
    time: string;
    datacontenttype: 'application/json';
    /** Our short event name, duplicated from `type` for easy switching. */
    kind: K;
    data: EventData[K];
  };
}[EventType];

/** Build an event. `source` identifies the emitter, e.g. `/trellis/<lattice>/host/<hostId>`. */
export function makeEvent<K extends EventType>(kind: K, source: string, data: EventData[K]): LatticeEvent {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source,
    type: `${EVENT_TYPE_PREFIX}${kind}`,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    kind,
    data,
  } as LatticeEvent;
}

/** Encode an event for publishing. */
export function encodeEvent(event: LatticeEvent): Uint8Array {
  return encodeJson(event);
}

/** Decode and validate an event; throws TRELLIS_BAD_REQUEST for anything that is not one of ours. */
export function decodeEvent(bytes: Uint8Array): LatticeEvent {
  if (bytes.length > MAX_EVENT_BYTES) throw new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', `event: ${bytes.length} bytes exceeds ${MAX_EVENT_BYTES}`);
  const value = decodeJson<unknown>(bytes, 'event');
  if (!isRecord(value) || value.specversion !== '1.0' || typeof value.type !== 'string' || !isRecord(value.data)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', 'event: not a CloudEvents 1.0 structured event');
  }
  if (!value.type.startsWith(EVENT_TYPE_PREFIX)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `event: unknown type ${value.type}`);
  }
  const kind = value.type.slice(EVENT_TYPE_PREFIX.length);
  if (!(EventTypes as readonly string[]).includes(kind)) throw new TrellisError('TRELLIS_BAD_REQUEST', `event: unknown type ${value.type}`);
  if (value.kind !== kind) throw new TrellisError('TRELLIS_BAD_REQUEST', `event: kind does not match type ${value.type}`);
  // The data every listener acts on is checked (a forged or corrupt event must not put holes in
  // a view); others are passed on as they are, their readers only display them.
  EventDataChecks[kind as EventType]?.(value.data, `event ${kind}.data`);
  return value as unknown as LatticeEvent;
}

/** Largest event accepted, bytes: a host_heartbeat of a few thousand actors fits well. */
export const MAX_EVENT_BYTES = 4 * 1024 * 1024;

const id = string({ minLength: 1, maxLength: 128 });
const count = integer(0, Number.MAX_SAFE_INTEGER);
/** A host's inventory as listeners read it; fields a newer host adds pass through. */
export const checkInventory: Check<HostInventory> = fields({
  id,
  name: string({ maxLength: 256 }),
  lattice: string({ maxLength: 128 }),
  labels: map(string({ maxLength: 4096 }), 1024),
  startedAt: string({ maxLength: 64 }),
  actors: list(fields({ name: id, version: id, digest: string({ maxLength: 128 }), instances: count, owner: optional(anyMap) }), 100_000),
  providers: list(fields({ name: id }), 10_000),
  seq: optional(count),
  beatMs: optional(integer(1, 3_600_000)),
}) as unknown as Check<HostInventory>;

const EventDataChecks: Partial<Record<EventType, Check<unknown>>> = {
  host_heartbeat: checkInventory,
  host_stopped: fields({ hostId: id, reason: string({ maxLength: 64 * 1024 }) }),
  actor_started: fields({ hostId: id, actor: id, version: id, instances: count }),
  actor_stopped: fields({ hostId: id, actor: id, version: id }),
};
