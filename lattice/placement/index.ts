/**
 * Placement: where an application's instances and provider references go. Pure functions only
 * (no NATS, no clock, no I/O): the reconciler calls `plan` every round with what it holds,
 * runs the actions through the control client, and writes `status` to the app-status bucket.
 *
 * ```ts
 * const p = plan({ apps, hosts, heldOut });        // apps: AppRevision[] (deleting ones too)
 * for (const a of p.actions) ...                    // start | scale | adopt | stop, with owner
 * for (const r of p.providers) ...                  // take | drop a provider reference
 * const s = status(app, hosts, p, { now: new Date(), failures, previous });
 * ```
 *
 * `plan({ apps, hosts, heldOut? })`
 * - `apps`: every app revision of the lattice (AppRevision from lattice/wire/apps.ts). An app
 *   with `deleting: true` is planned to zero: all its groups stop, its provider references drop.
 *   Groups owned by an app that is not listed are never touched (a failed read of the app store
 *   must not stop anything). An app whose spec cannot be planned is frozen and reported in
 *   `apps[].error`; the others are planned as usual. An app whose groups on the hosts carry a
 *   newer revision than the one given is stale input: it is not acted on (`apps[].stale`), so a
 *   leader that read an old revision never rolls a newer one back.
 * - `hosts`: the live hosts (HostInventory fits PlacementHost). A host that is not listed is dead
 *   and its instances are gone: they are placed again on the remaining eligible hosts. A host id
 *   listed twice counts once (the first).
 * - `heldOut`: ids of hosts in their flapping hold-down: no new instances or references go there;
 *   what runs there stays while it fits and is the first to go when over the count.
 *
 * The rules:
 * - Replicas are warm instances (`instances` of the inventory). A number is shared out over the
 *   spreads by weight in exact integers (largest remainder, ties to the earlier spread); `all`
 *   means one instance on every eligible host (counted in the first spread it matches).
 * - A host is eligible for a spread when its labels meet every requirement, it is not held out,
 *   and no group of the same actor@version that another app or a hand-started command placed
 *   runs there (a host runs one group per actor version; foreign groups are never touched).
 * - Running instances that still fit are kept (replanning an unchanged state gives no action);
 *   over the count, the held-out and the most crowded hosts give up instances first.
 * - Missing instances go one by one to the least-loaded eligible host; load = all instances on
 *   the host, counting this plan's placements; ties to the host with fewer of this version, then
 *   the smaller host id.
 * - Rebalance (a host joined): an instance moves from host X to host Y when X has at least 2
 *   more of this version and at least 2 more load than Y. Both margins make moves never reverse.
 * - Start before stop: reductions are emitted only while the version's running count stays at
 *   or above its desired count, so a moved instance stops only once its replacement reports
 *   running in a later inventory (the plan is a function of the state: replanning before that
 *   gives the same start again), and an instance whose spread no longer matches its host (a
 *   relabelled host) keeps serving until a replacement runs.
 * - Rolling update (the spec's version or digest changed): the new version is placed in full
 *   next to the old (surge); the old version's groups stop only once every spec version of that
 *   actor runs its desired count (and at least one instance). A new build at the same version
 *   cannot share a host with the old one: where no other host can take it, the old build stops
 *   on one host at a time (only when all started new instances run and a ready instance of the
 *   actor stays elsewhere); with no such instance, the spread says to give the build a version.
 * - Providers: one reference per host; the same spreads and keep rules; hosts already running
 *   the provider are preferred; a healthy reference is dropped only while enough healthy ones stay.
 *
 * Hysteresis: a plan depends only on its input, nothing is moved without both margins, and
 * every action moves the state toward the plan's own targets, so replanning the state it
 * produces reaches a fixed point (no actions) and stays there.
 *
 * The actions are safe to run concurrently and in any order: every stop/scale-down is
 * already justified by instances that run now. Each action carries the owner to send:
 * the app's current revision, or on a stop the group's own owner. Groups of an older revision
 * that still fit are adopted (re-owned in place), never restarted. A start that is still in
 * flight when the next plan is made shows up again (the inventory does not have it yet): the
 * caller keeps one call per (host, actor, version) in flight and skips the repeat.
 *
 * `status(app, hosts, plan, { now, failures?, previous? }) → AppStatus`: `running` counts the
 * inventory's instances of each version the app owns. Phase: Deleting (the app is being
 * deleted); Failed (the spec cannot be planned, or a spec version has start failures and no
 * instance running); Degraded (a spread cannot be satisfied, start failures, or this revision
 * was Deployed/Degraded before per `previous` and is short now); Deployed (every spec version
 * runs its desired count, no older version is left, providers placed); else Deploying.
 */
export { plan } from './plan.ts';
export { status } from './status.ts';
export { applyPlan, type ApplyOptions } from './simulate.ts';
export { largestRemainder, describeRequirements } from './shares.ts';
export type {
  ActionReason,
  ActorAction,
  ActorPlacement,
  ActorTarget,
  AppPlacement,
  PlacementActorGroup,
  PlacementHost,
  PlacementPlan,
  PlacementProvider,
  PlanInput,
  ProviderAction,
  ProviderPlacement,
  SpreadPlacement,
  StartFailure,
  StatusOptions,
} from './types.ts';
