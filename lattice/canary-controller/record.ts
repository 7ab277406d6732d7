/**
 * The canary document as the controller keeps it, and the pure rules the controller and the
 * reconciler read from it. The document is K1's CanaryState plus the bookkeeping that makes the
 * controller level-triggered: the effects a transition asked for stay in the document until they
 * are done, so a leader that dies after persisting a rollback (but before stopping the canary)
 * leaves the work to its successor, who reads it from KV and finishes it.
 */
import type { CanaryEffect, CanaryTransition, WeightsIntent } from '../canary/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { ActorWeights } from '../weights/index.ts';
import { isRecord, type AppActorSpec, type AppRevision, type CanaryState, type HostInventory } from '../wire/index.ts';

/** The stored document: one per actor, key = actor name. */
export interface CanaryRecord extends CanaryState {
  /** `--source`: the controller starts the canary's instances beside the stable ones (hand-run actors). */
  startInstances?: boolean;
  /** An app's actor: the stable and canary actor specs the reconciler keeps running meanwhile. */
  stableSpec?: AppActorSpec;
  canarySpec?: AppActorSpec;
  /** Effects asked for and not yet done (stop-version, retire-version, set-app-version). */
  pending: CanaryEffect[];
  /** When the old stable's instances were let go after promotion (weights moved and applied first). */
  retiredAt?: string;
  /** An ended run whose weights and effects are all done: nothing is level-triggered any more. */
  settled?: boolean;
  /** The last window judged, for `canary status` (the CLI has no metrics collector of its own). */
  lastWindow?: { at: string; actual?: number; stable: Summary; canary: Summary };
}

type Summary = { requests: number; failures: number; successRate?: number; p50Ms?: number; p99Ms?: number };

/** The record after a transition: the state, its new effects queued, bookkeeping kept. */
export function nextRecord(previous: CanaryRecord | undefined, t: CanaryTransition<CanaryState>, extra: Partial<CanaryRecord> = {}): CanaryRecord {
  const sameRun = previous !== undefined && previous.generation === t.state.generation;
  const base: Partial<CanaryRecord> = previous ? { ...(previous.startInstances !== undefined ? { startInstances: previous.startInstances } : {}), ...(previous.stableSpec ? { stableSpec: previous.stableSpec } : {}), ...(previous.canarySpec ? { canarySpec: previous.canarySpec } : {}) } : {};
  // A new generation keeps the effects of the run it replaced (its canary must still stop).
  const pending = [...(previous?.pending ?? []), ...t.effects].filter((e, i, all) => all.findIndex((o) => JSON.stringify(o) === JSON.stringify(e)) === i);
  const { settled: _s, retiredAt: _r, lastWindow: _w, ...state } = t.state as CanaryRecord;
  return {
    ...base,
    ...state,
    ...(sameRun && previous!.lastWindow ? { lastWindow: previous!.lastWindow } : {}),
    ...(sameRun && previous!.retiredAt ? { retiredAt: previous!.retiredAt } : {}),
    ...extra,
    pending,
  };
}

/** Check a record read from KV (K1's check, plus the controller's fields). */
export function checkRecordExtras(value: Record<string, unknown>): void {
  if (!Array.isArray(value.pending)) throw new TrellisError('TRELLIS_BAD_REQUEST', 'canary state: pending must be a list of effects');
  for (const e of value.pending) {
    if (!isRecord(e) || !['stop-version', 'retire-version', 'set-app-version'].includes(e.kind as string) || typeof e.version !== 'string') {
      throw new TrellisError('TRELLIS_BAD_REQUEST', `canary state: pending effect ${JSON.stringify(e)} is not one of stop-version, retire-version, set-app-version`);
    }
  }
}

/** The weights the state calls for (what the machine wrote with its last transition). */
export function desiredWeights(state: CanaryState): WeightsIntent {
  if (state.phase === 'Promoted') return { weights: { [state.canary]: 100 } };
  if (state.phase === 'RolledBack' || state.phase === 'Aborted' || state.step === 0) return { weights: { [state.stable]: 100 } };
  const w = state.weight.set;
  const out: WeightsIntent = { weights: { [state.stable]: 100 - w, [state.canary]: w } };
  const { stickyHeader: header, stickyCookie: cookie } = state.spec;
  if (header || cookie) out.sticky = { ...(header ? { header } : {}), ...(cookie ? { cookie } : {}), canary: state.canary };
  return out;
}

/** Does the stored weights document already say what `intent` says? (Zero weights count as absent.) */
export function weightsMatch(doc: ActorWeights | undefined, intent: WeightsIntent): boolean {
  if (!doc) return false;
  const norm = (w: Record<string, number>) => JSON.stringify(Object.entries(w).filter(([, p]) => p > 0).sort(([a], [b]) => (a < b ? -1 : 1)));
  if (norm(doc.weights) !== norm(intent.weights)) return false;
  const s = doc.sticky;
  const t = intent.sticky;
  return (s?.header ?? '') === (t?.header ?? '') && (s?.cookie ?? '') === (t?.cookie ?? '') && (s?.canary ?? '') === (t?.canary ?? '');
}

/** Instances of `actor@version` per host id, as the live inventories say (`owned`: only an app's, or only hand-run). */
export function instancesOf(hosts: readonly HostInventory[], actor: string, version: string, owned?: { app?: string }): Map<string, number> {
  const out = new Map<string, number>();
  for (const h of hosts) {
    for (const a of h.actors) {
      if (a.name !== actor || a.version !== version || a.instances === 0) continue;
      if (owned && (owned.app === undefined ? a.owner !== undefined : a.owner?.app !== owned.app)) continue;
      out.set(h.id, (out.get(h.id) ?? 0) + a.instances);
    }
  }
  return out;
}

/**
 * `--source` on a hand-run actor: the starts still missing for the canary to run beside the
 * stable version on the same hosts with the same count.
 */
export function missingCanaryStarts(record: CanaryRecord, hosts: readonly HostInventory[]): { hostId: string; count: number }[] {
  if (!record.startInstances || record.app) return [];
  const stable = instancesOf(hosts, record.actor, record.stable);
  const canary = instancesOf(hosts, record.actor, record.canary);
  return [...stable].filter(([h, n]) => (canary.get(h) ?? 0) < n).map(([hostId, count]) => ({ hostId, count }));
}

/** Does the canary serve? Started by us: on every stable host; otherwise: anywhere. */
export function canaryServes(record: CanaryRecord, hosts: readonly HostInventory[]): boolean {
  const canary = instancesOf(hosts, record.actor, record.canary);
  if (canary.size === 0) return false;
  if (record.app && record.canarySpec) return true;
  return missingCanaryStarts(record, hosts).length === 0;
}

/**
 * The app revision the reconciler plans, given the canary documents. While an app's actor is in
 * a canary, the planner must run stable and canary side by side instead of rolling one over the
 * other; after a rollback it keeps stable (and the canary only with keepCanaryOnRollback); after
 * a promotion it keeps the old stable until the controller has moved the weights and retired it.
 *
 * `hosts` covers the moment between an apply and the controller noticing it: an actor with a
 * `canary:` block whose new version differs from the version the app runs is held at what runs,
 * so the reconciler never starts a rolling update the controller would then have to undo.
 */
export function effectiveRevision(app: AppRevision, records: ReadonlyMap<string, CanaryRecord>, hosts: readonly HostInventory[]): AppRevision {
  let changed = false;
  const actors: AppActorSpec[] = [];
  for (const spec of app.spec.actors) {
    const r = records.get(spec.name);
    const override = r && r.app === app.name && r.stableSpec && r.canarySpec && (spec.version === r.canary || spec.version === r.stable) ? runningSpecs(r, spec) : undefined;
    if (r && r.app === app.name && r.phase === 'Promoted' && r.retiredAt && spec.version === r.canary) {
      actors.push(spec);
      continue;
    }
    if (override) {
      changed = true;
      for (const s of override) if (!actors.some((a) => a.name === s.name && a.version === s.version)) actors.push(s);
      continue;
    }
    const held = spec.canary ? pendingManifestCanary(app, spec, r, hosts) : undefined;
    if (held) {
      changed = true;
      actors.push(held.stableSpec);
      continue;
    }
    actors.push(spec);
  }
  return changed ? { ...app, spec: { ...app.spec, actors } } : app;
}

/** What an app canary runs now; undefined: the revision as it is. */
function runningSpecs(r: CanaryRecord, spec: AppActorSpec): AppActorSpec[] | undefined {
  const stable = r.stableSpec!;
  const canary = r.canarySpec!;
  switch (r.phase) {
    case 'Progressing':
    case 'Paused':
      return [stable, canary];
    case 'Promoted':
      // Once retired, a revision at the canary's version is the truth (later applies may change
      // replicas); one still at the old stable waits for set-app-version.
      if (!r.retiredAt) return [stable, canary];
      return spec.version === r.canary ? undefined : [canary];
    default:
      return r.spec.keepCanaryOnRollback ? [stable, canary] : [stable];
  }
}

/**
 * An app revision asks for a new version of an actor with a `canary:` block: the canary to start
 * (against the version the app runs now), or undefined when none is due (first deploy, the
 * version already is the canary or the stable of the latest run).
 */
export function pendingManifestCanary(app: AppRevision, spec: AppActorSpec, record: CanaryRecord | undefined, hosts: readonly HostInventory[]): { stable: string; stableSpec: AppActorSpec; canarySpec: AppActorSpec } | undefined {
  if (!spec.canary || app.deleting) return undefined;
  if (record && (record.canary === spec.version || (record.phase === 'Promoted' ? record.canary : record.stable) === spec.version)) return undefined;
  // What this app runs of the actor in another version: the newest such version is stable.
  const running = new Map<string, string>();
  for (const h of hosts) for (const a of h.actors) if (a.name === spec.name && a.owner?.app === app.name && a.version !== spec.version && a.instances > 0) running.set(a.version, a.digest);
  const fromRecord = record && record.app === app.name ? (record.phase === 'Promoted' ? record.canarySpec : record.stableSpec) : undefined;
  const stable = fromRecord && running.has(fromRecord.version) ? fromRecord.version : [...running.keys()].sort(compareVersions).at(-1);
  if (stable === undefined) return undefined;
  const { canary: _c, ...plain } = spec;
  const stableSpec: AppActorSpec = fromRecord?.version === stable ? fromRecord : { ...plain, version: stable, digest: running.get(stable)! };
  return { stable, stableSpec, canarySpec: spec };
}

/** Semantic versions in order (numeric parts; a pre-release sorts before its release). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  if (pa.length !== pb.length) return pa.length > pb.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The app revision's spec with `actor` moved to the canary (set-app-version); undefined when it already is. */
export function appSpecAtVersion(app: AppRevision, record: CanaryRecord): AppRevision['spec'] | undefined {
  const canarySpec = record.canarySpec;
  if (!canarySpec || app.spec.actors.some((a) => a.name === record.actor && a.version === record.canary && a.digest === canarySpec.digest) && !app.spec.actors.some((a) => a.name === record.actor && a.version !== record.canary)) return undefined;
  const actors: AppActorSpec[] = [];
  for (const a of app.spec.actors) {
    if (a.name !== record.actor) actors.push(a);
    else if (!actors.some((x) => x.name === record.actor)) actors.push({ ...canarySpec, ...(a.canary ? { canary: a.canary } : {}) });
  }
  return { ...app.spec, actors };
}
