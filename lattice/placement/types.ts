/**
 * The planner's input and output. The input is what the reconciler already holds (app revisions
 * from the app store, host inventories from heartbeats, the hosts held out after flapping); the
 * output is everything it must do, plus the counts `status` and `trellis app status` show.
 */
import type { AppRevision, Owner } from '../wire/apps.ts';

/** An actor instance group on a host, as its inventory reports it (ActorInventory fits). */
export interface PlacementActorGroup {
  name: string;
  version: string;
  digest: string;
  /** Warm instances: what counts as replicas, and as ready to serve. */
  instances: number;
  /** The app revision that placed it; absent when started by hand. */
  owner?: Owner;
}

/** A provider on a host, as its inventory reports it (ProviderInventory fits). */
export interface PlacementProvider {
  name: string;
  health?: 'ok' | 'starting' | 'failed';
  owners?: string[];
  manual?: boolean;
}

/** A live host (HostInventory fits). Hosts not listed are dead: their instances are gone. */
export interface PlacementHost {
  id: string;
  name: string;
  labels: Record<string, string>;
  actors: readonly PlacementActorGroup[];
  providers: readonly PlacementProvider[];
}

export interface PlanInput {
  /** Every app of the lattice, deleting ones included. Groups owned by an app not listed are never touched. */
  apps: readonly AppRevision[];
  /** The live hosts with their current inventories. */
  hosts: readonly PlacementHost[];
  /**
   * Host ids held out (a flapping host in its hold-down period): they get no new instances or
   * provider references, and are the first to give up instances that are over the count.
   */
  heldOut?: ReadonlySet<string> | readonly string[];
}

/** Why an action is in the plan (for events and logs). */
export type ActionReason =
  /** Reach the desired count (first deployment, scale up, a dead host's instances re-placed). */
  | 'place'
  /** Move an instance to a less loaded host (a host joined): started here before stopped there. */
  | 'rebalance'
  /** A new version or build of the actor, started while the old one still serves. */
  | 'update'
  /** More instances run than desired (and the desired ones are all running). */
  | 'scale-down'
  /** The previous version or build, stopped once the new one runs in full. */
  | 'retire'
  /** The previous build at the same version, stopped on one host to make room for the new build. */
  | 'free'
  /** The actor is no longer in the app, or the app is being deleted. */
  | 'remove'
  /** The group runs what the app wants but was placed by an older revision. */
  | 'adopt';

/**
 * One call to make on one host.
 * - `start`: no group of actor@version there: actorStart { actor, version, digest, count, policy, owner }.
 * - `scale`: the group exists and is owned by this revision: actorScale { actor, version, count, owner }.
 * - `adopt`: the group exists with this digest but an older revision owns it: actorStart with the
 *   full request (same digest: the host resizes in place and applies the policy) to re-own it;
 *   `count` may differ from `from`.
 * - `stop`: actorStop { actor, version, owner } (owner = the group's current owner).
 */
export interface ActorAction {
  kind: 'start' | 'scale' | 'adopt' | 'stop';
  hostId: string;
  actor: string;
  version: string;
  digest: string;
  /** Instances wanted after the action (0 for stop). */
  count: number;
  /** Instances the inventory reports now. */
  from: number;
  /** The sandbox policy of the app's spec (absent on stops of versions the spec no longer has). */
  policy?: Record<string, unknown>;
  owner: Owner;
  reason: ActionReason;
}

/** What one (host, actor, version) group should be once the plan's actions are done. */
export interface ActorTarget {
  hostId: string;
  actor: string;
  version: string;
  digest: string;
  count: number;
  /** Absent for an old version kept while its successor starts (its spec is gone). */
  policy?: Record<string, unknown>;
  owner: Owner;
}

/**
 * A provider reference: `take` = providerStart { provider, owner: app } (starts it unless it
 * runs), `drop` = providerStop { provider, owner: app } (it stops with its last reference).
 */
export interface ProviderAction {
  kind: 'take' | 'drop';
  hostId: string;
  provider: string;
  app: string;
  reason: 'place' | 'scale-down' | 'remove';
}

/** One spread of an actor version or provider: how many it should get, got, and has ready. */
export interface SpreadPlacement {
  name: string;
  desired: number;
  /** Instances (or provider hosts) the plan gives it; less than desired only with a reason. */
  placed: number;
  /** Instances (or healthy provider references) on its hosts now. */
  running: number;
  /** Why placed < desired, e.g. "no host matches cloud=azure". */
  reason?: string;
}

/** One actor version of an app: the spec's (`current`), or an older one still running. */
export interface ActorPlacement {
  name: string;
  version: string;
  digest: string;
  /** True for a version of the spec; false for an older version or build on its way out. */
  current: boolean;
  desired: number;
  placed: number;
  running: number;
  spreads: SpreadPlacement[];
}

export interface ProviderPlacement {
  kind: string;
  desired: number;
  placed: number;
  running: number;
  spreads: SpreadPlacement[];
}

export interface AppPlacement {
  name: string;
  revision: number;
  deleting: boolean;
  /** The spec cannot be planned (e.g. a weight of 0): nothing of the app is touched. */
  error?: string;
  /** Hosts run a newer revision than the one given: nothing of the app is touched. */
  stale?: string;
  actors: ActorPlacement[];
  providers: ProviderPlacement[];
}

export interface PlacementPlan {
  /** Every group of a listed app as it should be after `actions` (count > 0 only). */
  targets: ActorTarget[];
  /** What to do, in a deterministic order; safe to run all at once (see plan()). */
  actions: ActorAction[];
  providers: ProviderAction[];
  /** Per app (sorted by name), the counts per actor version and spread. */
  apps: AppPlacement[];
}

/** A start that failed (reported by the reconciler): makes an app Failed or Degraded. */
export interface StartFailure {
  actor: string;
  version: string;
  digest?: string;
  hostId?: string;
  /** A Trellis error code, e.g. TRELLIS_DIGEST_NOT_FOUND or TRELLIS_LOAD_FAILED. */
  code: string;
  message: string;
}

export interface StatusOptions {
  /** The observation time (observedAt). */
  now: Date | string;
  /** Start failures of this app's revision, from the reconciler's last attempts. */
  failures?: readonly StartFailure[];
  /**
   * The app's previous status: once a revision was Deployed, missing instances make it Degraded
   * (not Deploying) until they run again.
   */
  previous?: { revision: number; phase: string };
}
