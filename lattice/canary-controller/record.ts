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
  /**
   * A writer other than the leader (the CLI: promote, resume, start) began a window on its own
   * clock; the leader restamps it on its clock before judging it, so a laptop 30 s behind cannot
   * make a step judge at once over old traffic.
   */
  windowReset?: boolean;
  /** The last window judged, for `canary status` (the CLI has no metrics collector of its own). */
  lastWindow?: { at: string; actual?: number; stable: Summary; canary: Summary };
}

type Summary = { requests: number; failures: number; successRate?: number; p50Ms?: number; p99Ms?: number };

/** The record after a transition: the state, its new effects queued, bookkeeping kept. */
export function nextRecord(previous: CanaryRecord | undefined, t: CanaryTransition<CanaryState>, extra: Partial<CanaryRecord> = {}): CanaryRecord {
  const sameRun = previous !== undefined && previous.generation === t.state.generation;
  const base: Partial<CanaryRecord> = previous ? { ...(previous.startInstances !== undefined ? { startInstances: previous.startInstances } : {}), ...(previous.stableSpec ? { stableSpec: previous.stableSpec } : {}), ...(previous.canarySpec ? { canarySpec: previous.canarySpec } : {}) } : {};
  // A new generation keeps the effects of the run it replaced (its canary must still stop).
  // A set-app-version carries the spec it moves the app to: the run that asked for it may be
  // replaced before it is done, and the next run's canarySpec is not validated.
  const canarySpec = extra.canarySpec ?? base.canarySpec;
  const effects = t.effects.map((e) => (e.kind === 'set-app-version' && !e.spec && canarySpec?.version === e.version ? { ...e, spec: canarySpec } : e));
  const pending = [...(previous?.pending ?? []), ...effects].filter((e, i, all) => all.findIndex((o) => JSON.stringify(o) === JSON.stringify(e)) === i);
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

/**
 * The record a writer stores: `leader` writes window starts on the clock windows are judged by;
 * anyone else marks a window it began (or keeps the mark of one not yet restamped).
 */
export function withWindowClock(previous: CanaryRecord | undefined, record: CanaryRecord, leader: boolean): CanaryRecord {
  const { windowReset: _w, ...rest } = record;
  const began = previous === undefined || previous.generation !== record.generation || previous.windowStartedAt !== record.windowStartedAt;
  if (leader) return began ? rest : record;
  return began || record.windowReset ? { ...rest, windowReset: true } : rest;
}

/**
 * Where the collector's window of a run starts: one report period after windowStartedAt, since a
 * report arriving in that period holds mostly traffic from before it (the previous step's
 * weight, a window already judged).
 */
export function windowFrom(r: CanaryState, reportPeriodMs: number): number {
  return Date.parse(r.windowStartedAt) + reportPeriodMs;
}

export const windowKey = (r: CanaryState) => `${r.generation}:${r.windowStartedAt}`;

/**
 * Merge the window again now? Reports come once per period per reporter: merging the whole
 * window at every tick (4 Hz) while waiting for minRequests would only repeat the work.
 */
export function mergeDue(last: { key: string; at: number } | undefined, r: CanaryState, now: number, reportPeriodMs: number): boolean {
  return last?.key !== windowKey(r) || now - last.at >= reportPeriodMs;
}

/** Check a record read from KV (K1's check, plus the controller's fields). */
export function checkRecordExtras(value: Record<string, unknown>): void {
  if (value.windowReset !== undefined && typeof value.windowReset !== 'boolean') throw new TrellisError('TRELLIS_BAD_REQUEST', 'canary state: windowReset must be true or false');
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

/** Which canary document a weights document was written from (its KV revision, which only grows). */
export interface WeightsStamp {
  generation: number;
  revision: number;
}

export interface StampedWeights extends ActorWeights {
  canary?: WeightsStamp;
}

/**
 * May a writer holding the canary document at `mine` replace these weights? Not when they were
 * written from a newer document (a slower writer's split must not land over an abort); weights
 * without a stamp (a hand edit, none yet) are always replaced.
 */
export function mayReplaceWeights(current: StampedWeights | undefined, mine: WeightsStamp): boolean {
  return current?.canary === undefined || current.canary.revision <= mine.revision;
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

/**
 * A retire-version effect against the document as it is now: 'own' (the promoted run retires its
 * old stable), 'other' (queued by a run since replaced: still done, or the old stable would run
 * for ever at 0 %), or 'skip' (that version serves again as this run's stable or canary).
 */
export function retireKind(r: CanaryState, version: string): 'own' | 'other' | 'skip' {
  if (r.phase === 'Promoted' && version === r.stable) return 'own';
  return version === r.stable || version === r.canary ? 'skip' : 'other';
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
    const override = r && r.app === app.name && r.stableSpec && r.canarySpec ? runningSpecs(r, spec) : undefined;
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

/**
 * What an app canary runs now instead of `spec`; undefined: the revision as written. A run that
 * ended must not hold the app for ever (its document stays in KV): after a promotion only until
 * the old stable is retired and the app moved; after a rollback only while the app still names
 * the rejected version, and then as the app's current spec at the stable version (later
 * replica, policy or link changes still count), not the snapshot taken at the start.
 */
function runningSpecs(r: CanaryRecord, spec: AppActorSpec): AppActorSpec[] | undefined {
  const stable = r.stableSpec!;
  const canary = r.canarySpec!;
  switch (r.phase) {
    case 'Progressing':
    case 'Paused':
      // A promotion's set-app-version may still be on its way (the app names the version before).
      return spec.version === r.canary || spec.version === r.stable || r.pending.some((e) => e.kind === 'set-app-version') ? [stable, canary] : undefined;
    case 'Promoted': {
      if (spec.version !== r.canary && spec.version !== r.stable) return undefined;
      if (!r.retiredAt) return [stable, canary];
      // Retired, the app not yet moved: the promoted version, not a roll back to the old one.
      const moving = r.pending.some((e) => e.kind === 'set-app-version');
      return moving && spec.version === r.stable ? [canary] : undefined;
    }
    default: {
      const keep = r.spec.keepCanaryOnRollback ? [canary] : [];
      if (spec.version === r.canary) {
        const { canary: _c, ...plain } = spec;
        return [{ ...plain, version: r.stable, digest: stable.digest }, ...keep];
      }
      return keep.length > 0 && spec.version === r.stable ? [spec, ...keep] : undefined;
    }
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

/**
 * The app revision's spec with `actor` moved from `from` to `target` (set-app-version);
 * undefined when there is nothing to do: already there, the actor gone from the app, or the app
 * since asking for a third version (a newer apply wins over an old promotion).
 */
export function appSpecAtVersion(app: AppRevision, actor: string, target: AppActorSpec, from?: string): AppRevision['spec'] | undefined {
  const named = app.spec.actors.filter((a) => a.name === actor);
  if (named.length === 0) return undefined;
  // Already at the version (whatever its digest: a newer apply of it is not overwritten).
  if (named.every((a) => a.version === target.version)) return undefined;
  if (from !== undefined && named.some((a) => a.version !== target.version && a.version !== from)) return undefined;
  const actors: AppActorSpec[] = [];
  for (const a of app.spec.actors) {
    if (a.name !== actor) actors.push(a);
    else if (!actors.some((x) => x.name === actor)) actors.push({ ...target, ...(a.canary ? { canary: a.canary } : {}) });
  }
  return { ...app.spec, actors };
}
