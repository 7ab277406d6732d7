/**
 * The control contract: for each control operation, its request (one validator, so a host
 * handler only ever sees a complete, typed request), its reply data and the client's default
 * time-out. Shared by the hosts that answer, the control client, the CLI and the tests.
 * Transport failures throw on the client; application failures are data in the envelope.
 */
import type { WireError } from '../errors/index.ts';
import type { ControlOp } from '../subjects/index.ts';
import { token, versionToken } from '../subjects/index.ts';
import type { Owner } from './apps.ts';
import { anyMap, integer, object, optional, string, type Check, type Checked } from './schema.ts';

/** The one control reply envelope: data on success, a coded error otherwise. */
export type ControlReply<T = unknown> = { ok: true; data: T } | { ok: false; error: WireError };

/** An actor instance group as a host reports it. */
export interface ActorInventory {
  name: string;
  version: string;
  digest: string;
  world: string;
  /** Warm instances placed (the count). */
  instances: number;
  /** Of the actor's instances, how many run a call now (absent from older hosts). */
  busy?: number;
  maxConcurrency: number;
  startedAt: string;
  /** The app (and revision) that placed it; absent when started by hand. */
  owner?: Owner;
}

/** A provider as a host reports it. */
export interface ProviderInventory {
  name: string;
  health: 'ok' | 'starting' | 'failed';
  restarts: number;
  startedAt: string;
  /** OS process id of the provider process, when the host supervises one. */
  pid?: number;
  /** Apps that asked for it; it stops when the last one lets go (and it was not started by hand). */
  owners?: string[];
  /** Started by hand (`trellis start provider`): only a stop without an owner stops it. */
  manual?: boolean;
}

/** What a host says about itself: in heartbeats, ping answers and inventory replies. */
export interface HostInventory {
  id: string;
  name: string;
  lattice: string;
  labels: Record<string, string>;
  version: string;
  startedAt: string;
  uptimeMs: number;
  actors: ActorInventory[];
  providers: ProviderInventory[];
  /** Inventory sequence: grows with every change; liveness beats carry the current one. */
  seq?: number;
  /** Liveness beat period of this host, ms (absent: a host without beats). */
  beatMs?: number;
}

/**
 * Most instances of one actor version one host may be asked for. Memory is bounded by the
 * policy (instances × maxMemoryPages must fit the host), not by this number.
 */
export const MAX_INSTANCES_PER_HOST = 100_000;

const asToken = (what: string): Check<string> => string({ maxLength: 128, test: (s) => problem(() => token(s, what)) });
const semver: Check<string> = string({ maxLength: 128, test: (s) => problem(() => versionToken(s)) });
const digest: Check<string> = string({ test: (s) => (/^sha256:[0-9a-f]{64}$/.test(s) ? undefined : 'must be a digest, sha256:<64 hex digits>') });

/** The message of what `check` throws, or undefined when it passes. */
function problem(check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Every request names the lattice it is meant for, so a misdirected command is refused. */
const lattice = asToken('lattice name');
const owner: Check<Owner> = object({ app: asToken('app name'), revision: integer(1, Number.MAX_SAFE_INTEGER) });
/**
 * The sending controller's fencing token: the revision of its leader lease when its term began
 * (a later leader's is always higher). A host refuses a command whose fence is below the highest
 * it has seen, so a deposed leader's late (buffered) commands cannot undo a newer leader's work.
 * Commands without one (by hand) are not fenced.
 */
const fence = optional(integer(1, Number.MAX_SAFE_INTEGER));

/** One validator per control operation. */
export const ControlRequests = {
  hostPing: object({ lattice }),
  hostInventory: object({ lattice }),
  hostStop: object({ lattice, timeoutMs: optional(integer(0, 600_000)) }),
  labelPut: object({ lattice, key: string({ minLength: 1, maxLength: 63 }), value: string({ maxLength: 256 }) }),
  labelDel: object({ lattice, key: string({ minLength: 1, maxLength: 63 }) }),
  actorStart: object({
    lattice,
    actor: asToken('actor name'),
    version: semver,
    digest,
    count: optional(integer(1, MAX_INSTANCES_PER_HOST)),
    /** A sandbox policy; the host compiles it (and refuses what it cannot grant). */
    policy: optional(anyMap),
    /** Set by the reconciler: the instances belong to this app revision. */
    owner: optional(owner),
    fence,
  }),
  actorScale: object({ lattice, actor: asToken('actor name'), version: semver, count: integer(0, MAX_INSTANCES_PER_HOST), owner: optional(owner), fence }),
  actorStop: object({ lattice, actor: asToken('actor name'), version: optional(semver), owner: optional(owner), fence }),
  /** With an owner, the app takes a reference; without, the provider is started by hand. */
  providerStart: object({ lattice, provider: asToken('provider name'), owner: optional(asToken('app name')), fence }),
  /** With an owner, the app lets go (the provider stops with its last reference); without, it stops. */
  providerStop: object({ lattice, provider: asToken('provider name'), owner: optional(asToken('app name')), fence }),
} satisfies Record<ControlOp, Check<unknown>>;

/** The validated request of an operation. */
export type ControlRequest<Op extends ControlOp> = Checked<(typeof ControlRequests)[Op]>;
/** What the caller fills in: everything but the lattice, which the client adds. */
export type ControlParams<Op extends ControlOp> = Omit<ControlRequest<Op>, 'lattice'>;

/** The reply data of each operation. */
export interface ControlReplies {
  hostPing: HostInventory;
  hostInventory: HostInventory;
  hostStop: { id: string };
  labelPut: { labels: Record<string, string> };
  labelDel: { labels: Record<string, string> };
  actorStart: ActorInventory;
  actorScale: ActorInventory;
  actorStop: { stopped: string[] };
  providerStart: ProviderInventory;
  /** `running`: the process still runs, held by `owners` (apps) or a hand start. */
  providerStop: { stopped: string; running?: boolean; owners?: string[] };
}

/**
 * The client's default time-out per operation. Starting (or scaling up) an actor may fetch and
 * transpile a large component; a provider start waits for the process to be ready.
 */
export const ControlTimeoutsMs: Record<ControlOp, number> = {
  hostPing: 2000,
  hostInventory: 2000,
  hostStop: 2000,
  labelPut: 2000,
  labelDel: 2000,
  actorStart: 120_000,
  actorScale: 120_000,
  actorStop: 30_000,
  providerStart: 30_000,
  providerStop: 15_000,
};
