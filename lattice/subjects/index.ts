/**
 * Every NATS subject Trellis uses is built here, and nowhere else. Subjects carry the lattice
 * name and a protocol version so that two lattices (or two protocol versions) can share one
 * NATS account without hearing each other.
 */
import { TrellisError } from '../errors/index.ts';

/** Protocol version of the control and event subjects. */
export const PROTOCOL_VERSION = 'v1';

const ROOT = 'trellis';

/** Characters NATS gives meaning to, plus white space: never allowed inside one token. */
const FORBIDDEN_TOKEN = /[.*>\s]/;

/**
 * Validate one subject token (lattice name, host id, actor name, version...). Throws
 * TRELLIS_BAD_REQUEST naming what was wrong, so bad input never becomes a wildcard.
 */
export function token(value: string, what: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `${what} must be a non-empty string`);
  }
  if (value.length > 128) throw new TrellisError('TRELLIS_BAD_REQUEST', `${what} is longer than 128 characters`);
  if (FORBIDDEN_TOKEN.test(value)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `${what} "${value}" may not contain '.', '*', '>' or white space`);
  }
  return value;
}

/** A semantic version as a subject token: dots become underscores (1.2.0 → 1_2_0). */
export function versionToken(version: string): string {
  if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/.test(version)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `version "${version}" is not a semantic version (e.g. 1.2.0)`);
  }
  return version.replaceAll('.', '_');
}

/** Control nouns and verbs; subjects are `trellis.<lattice>.ctl.v1.<noun>.<verb>[.<hostId>]`. */
export const ControlOps = {
  hostPing: ['host', 'ping'],
  hostInventory: ['host', 'inventory'],
  hostStop: ['host', 'stop'],
  labelPut: ['label', 'put'],
  labelDel: ['label', 'del'],
  actorStart: ['actor', 'start'],
  actorScale: ['actor', 'scale'],
  actorStop: ['actor', 'stop'],
  providerStart: ['provider', 'start'],
  providerStop: ['provider', 'stop'],
} as const;
export type ControlOp = keyof typeof ControlOps;

/** The actor token of a participant's own log lines (not an actor's: no example or app names an actor `-`). */
export const HOST_LOG_TOKEN = '-';

/** Event types; subjects are `trellis.<lattice>.evt.<type>`. */
export const EventTypes = [
  'host_started',
  'host_stopped',
  'host_heartbeat',
  'labels_changed',
  'actor_started',
  'actor_stopped',
  'actor_start_failed',
  'provider_started',
  'provider_stopped',
  'provider_restarted',
  'app_deployed',
  'app_updated',
  'app_deleted',
  'actor_placed',
  'actor_replaced',
  'reconcile_failed',
  'canary_started',
  'canary_step',
  'canary_paused',
  'canary_promoted',
  'canary_rolled_back',
  'canary_aborted',
] as const;
export type EventType = (typeof EventTypes)[number];

/** Subject builder for one lattice; create once and reuse. */
export interface Subjects {
  readonly lattice: string;
  /** Control subject for an operation addressed to one host, or to all hosts when hostId is omitted. */
  control(op: ControlOp, hostId?: string): string;
  /** Wildcard a host subscribes to for its own control operations. */
  controlForHost(hostId: string): string;
  /** Wildcard for control operations addressed to all hosts. */
  controlForAll(): string;
  /** Event subject for one type. */
  event(type: EventType): string;
  /** Wildcard for every event in the lattice. */
  allEvents(): string;
  /** Liveness beat subject of one host. */
  beat(hostId: string): string;
  /** Wildcard for the beats of every host. */
  allBeats(): string;
  /** Per-version traffic windows of one participant (host id, `gateway-<id>`...), see lattice/metrics. */
  metrics(participant: string): string;
  /** Wildcard for every participant's traffic windows. */
  allMetrics(): string;
  /** Invocation subject of one actor version (a queue group subscribes here). */
  rpc(actor: string, version: string): string;
  /** Wildcard for every version of an actor. */
  rpcAllVersions(actor: string): string;
  /** Queue group name for an actor version. */
  rpcQueue(actor: string, version: string): string;
  /** Subject a provider kind answers on (one queue group per kind). */
  provider(provider: string): string;
  /** Queue group of a provider kind. */
  providerQueue(provider: string): string;
  /**
   * Reply-inbox prefix of one NATS user of this lattice (nats.js `inboxPrefix`). A user's
   * permissions let it subscribe only under its own prefix, so the server vouches for it: the
   * reply subject of a request names who asked (rate limits key on it). Headers cannot do this:
   * any publisher can forge them.
   */
  inboxPrefix(user: string): string;
  /**
   * Log lines of one participant (a host id) about one actor, or `-` for the participant's own
   * lines: `trellis.<lattice>.log.v1.<participant>.<actor>`. Bodies are pino JSON lines.
   */
  log(participant: string, actor?: string): string;
  /** Wildcard for log lines, narrowed to a participant and/or an actor when given. */
  logs(filter?: { participant?: string; actor?: string }): string;
  /** Names of the bounded JetStream streams that keep recent logs and events (`trellis logs/events --since`). */
  readonly streams: { logs: string; events: string };
  /** Names of the JetStream buckets of this lattice. */
  readonly buckets: { weights: string; config: string; links: string; httpRoutes: string; artifacts: string; hosts: string; apps: string; appStatus: string; leader: string; canaries: string };
}

/** Build the subject space of a lattice. The name is validated once here. */
export function subjects(lattice: string): Subjects {
  const l = token(lattice, 'lattice name');
  const base = `${ROOT}.${l}`;
  const ctl = `${base}.ctl.${PROTOCOL_VERSION}`;
  // JetStream bucket names allow [A-Za-z0-9_-]: lattice tokens may hold other characters.
  const bucketSafe = l.replace(/[^A-Za-z0-9_-]/g, '_');
  return {
    lattice: l,
    control(op, hostId) {
      const [noun, verb] = ControlOps[op];
      return hostId === undefined ? `${ctl}.${noun}.${verb}` : `${ctl}.${noun}.${verb}.${token(hostId, 'host id')}`;
    },
    controlForHost: (hostId) => `${ctl}.*.*.${token(hostId, 'host id')}`,
    controlForAll: () => `${ctl}.*.*`,
    event: (type) => `${base}.evt.${type}`,
    allEvents: () => `${base}.evt.>`,
    beat: (hostId) => `${base}.beat.${PROTOCOL_VERSION}.${token(hostId, 'host id')}`,
    allBeats: () => `${base}.beat.${PROTOCOL_VERSION}.*`,
    metrics: (participant) => `${base}.metrics.${PROTOCOL_VERSION}.${token(participant, 'participant')}`,
    allMetrics: () => `${base}.metrics.${PROTOCOL_VERSION}.*`,
    rpc: (actor, version) => `${base}.rpc.${token(actor, 'actor name')}.${versionToken(version)}`,
    rpcAllVersions: (actor) => `${base}.rpc.${token(actor, 'actor name')}.*`,
    rpcQueue: (actor, version) => `rpc-${token(actor, 'actor name')}-${versionToken(version)}`,
    provider: (provider) => `${base}.prov.${token(provider, 'provider name')}`,
    providerQueue: (provider) => `prov-${token(provider, 'provider name')}`,
    inboxPrefix: (user) => `_INBOX.${l}.${token(user, 'user')}`,
    log: (participant, actor) => `${base}.log.${PROTOCOL_VERSION}.${token(participant, 'participant')}.${actor === undefined ? HOST_LOG_TOKEN : token(actor, 'actor name')}`,
    logs: (filter = {}) =>
      `${base}.log.${PROTOCOL_VERSION}.${filter.participant === undefined ? '*' : token(filter.participant, 'host id')}.${filter.actor === undefined ? '*' : token(filter.actor, 'actor name')}`,
    streams: { logs: `trellis-${bucketSafe}-logs`, events: `trellis-${bucketSafe}-events` },
    buckets: {
      // Named "routes" before weights had their own name; kept so stored weights stay readable.
      weights: `trellis-${bucketSafe}-routes`,
      config: `trellis-${bucketSafe}-config`,
      links: `trellis-${bucketSafe}-links`,
      httpRoutes: `trellis-${bucketSafe}-http`,
      artifacts: `trellis-${bucketSafe}-artifacts`,
      hosts: `trellis-${bucketSafe}-hosts`,
      apps: `trellis-${bucketSafe}-apps`,
      appStatus: `trellis-${bucketSafe}-app-status`,
      leader: `trellis-${bucketSafe}-leader`,
      canaries: `trellis-${bucketSafe}-canaries`,
    },
  };
}

/** Parse the op and target host back out of a control subject (for the responder). */
export function parseControlSubject(subject: string): { noun: string; verb: string; hostId?: string } | undefined {
  const parts = subject.split('.');
  // trellis.<lattice>.ctl.v1.<noun>.<verb>[.<hostId>]
  if (parts.length < 6 || parts[0] !== ROOT || parts[2] !== 'ctl') return undefined;
  return { noun: parts[4]!, verb: parts[5]!, hostId: parts[6] };
}
