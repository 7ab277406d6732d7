/**
 * Planning one actor version of one app: share its replicas out over its spreads, keep what runs
 * and still fits, place the rest on the least-loaded eligible hosts, rebalance onto joined hosts,
 * and turn the result into actions that never take a ready instance away before its replacement
 * runs.
 */
import type { AppActorSpec, AppRevision } from '../wire/apps.ts';
import { MAX_INSTANCES_PER_HOST } from '../wire/control.ts';
import { describeRequirements, Heap, largestRemainder, matches } from './shares.ts';
import type { Health } from './providers.ts';
import type { ActionReason, ActorAction, ActorPlacement, PlacementActorGroup, PlacementHost, SpreadPlacement } from './types.ts';

/** A live host while a plan is computed. */
export interface Slot {
  index: number;
  host: PlacementHost;
  heldOut: boolean;
  /** Instances of every actor group on it, updated as the plan places and removes. */
  load: number;
}

/** Shared by every app of one plan. */
export interface Context {
  /** Sorted by host id: index order is the deterministic tie-break. */
  slots: Slot[];
  /** Host indices matching a requirement set, by its canonical key (and by the object itself). */
  matching: Map<string, number[]>;
  matchingOf: WeakMap<object, number[]>;
  /** Every group on every host by actor name (a host runs one group per actor version). */
  byName: Map<string, { h: number; g: PlacementActorGroup }[]>;
  /**
   * Scratch space of one actor version, all zeros between versions: its target per host, and
   * whether a host cannot take it. Typed arrays, since the placement heap compares them often.
   */
  tc: Int32Array;
  block: Int8Array;
  /** Provider references: app → provider → host index → health. */
  refs: Map<string, Map<string, Map<number, Health>>>;
}

export function matchingHosts(ctx: Context, requirements: Record<string, string>): number[] {
  let found = ctx.matchingOf.get(requirements);
  if (found) return found;
  const key = describeRequirements(requirements);
  found = ctx.matching.get(key);
  if (!found) {
    found = ctx.slots.filter((s) => matches(s.host.labels, requirements)).map((s) => s.index);
    ctx.matching.set(key, found);
  }
  ctx.matchingOf.set(requirements, found);
  return found;
}

/** An own group (owner set) of this exact actor version and build on a host. */
export type Current = PlacementActorGroup & { owner: NonNullable<PlacementActorGroup['owner']> };

export interface ActorResult {
  actions: ActorAction[];
  /** host index → instances after the actions. */
  emitted: Map<number, number>;
  placement: ActorPlacement;
  /** A host whose old build of this same version must stop first (the in-place replacement). */
  free?: number;
}

const NONE = 0;
const OLD = 1;
const FOREIGN = 2;

interface Blocked {
  heldOut: number;
  old: number[];
  foreign: Map<string, number>;
}

/**
 * Plan one actor version. `current` holds the app's groups of exactly this version and digest;
 * `readyOfName` the app's ready instances of this actor name (any version) per host; `hasOld`
 * says an older version or build of it still runs (new instances are then an update).
 */
export function planActor(
  ctx: Context,
  app: AppRevision,
  spec: AppActorSpec,
  current: Map<number, Current>,
  readyOfName: Map<number, number>,
  hasOld: boolean,
  owner: { app: string; revision: number },
): ActorResult {
  const key = `${spec.name}@${spec.version}`;
  const { slots, tc, block } = ctx;
  const keyed: number[] = [];
  const foreign = new Map<number, string>();
  for (const { h, g } of ctx.byName.get(spec.name) ?? []) {
    if (g.version !== spec.version) continue;
    keyed.push(h);
    if (g.owner?.app !== app.name) {
      block[h] = FOREIGN;
      foreign.set(h, g.owner ? `of app ${g.owner.app}` : 'started by hand');
    } else if (g.digest !== spec.digest && block[h] === NONE) block[h] = OLD;
  }
  const blockOf = (slot: Slot): number => block[slot.index]!;
  const foreignName = (slot: Slot): string => foreign.get(slot.index)!;
  // The load the plan sees excludes this version's own instances: they are added back as kept.
  for (const [h, c] of current) slots[h]!.load -= c.instances;

  const target = new Map<number, number>();
  const add = (h: number, n: number) => {
    target.set(h, (target.get(h) ?? 0) + n);
    tc[h]! += n;
    slots[h]!.load += n;
  };
  const rebalanced = new Set<number>();
  const spreads: SpreadPlacement[] = spec.spread.map((s) => ({ name: s.name, desired: 0, placed: 0, running: 0 }));
  const blocked: Blocked[] = spec.spread.map(() => ({ heldOut: 0, old: [], foreign: new Map() }));
  const freeCandidates = new Set<number>();

  if (spec.replicas === 'all') {
    // One per eligible host, counted in the first spread it matches.
    for (const slot of slots) {
      const s = spec.spread.findIndex((sp) => matches(slot.host.labels, sp.requirements));
      if (s < 0) continue;
      const b = blockOf(slot);
      const cur = current.get(slot.index)?.instances ?? 0;
      if (b === FOREIGN) {
        const what = foreignName(slot);
        blocked[s]!.foreign.set(what, (blocked[s]!.foreign.get(what) ?? 0) + 1);
        continue;
      }
      if (slot.heldOut && cur === 0) {
        blocked[s]!.heldOut++;
        continue;
      }
      spreads[s]!.desired++;
      if (b === OLD) {
        blocked[s]!.old.push(slot.index);
        freeCandidates.add(slot.index);
        continue;
      }
      add(slot.index, 1);
      spreads[s]!.placed++;
      spreads[s]!.running += Math.min(cur, 1);
    }
  } else {
    const shares = largestRemainder(spec.replicas, spec.spread.map((s) => s.weight));
    // Most restrictive spreads claim the running instances first, so an overlapping catch-all
    // spread never takes instances that only the narrower one could use.
    const order = spec.spread.map((s, i) => ({ i, m: matchingHosts(ctx, s.requirements).length })).sort((a, b) => a.m - b.m || a.i - b.i);
    const avail = new Map<number, number>();
    for (const [h, c] of current) avail.set(h, c.instances);
    for (const { i } of order) {
      const sp = spec.spread[i]!;
      const want = shares[i]!;
      spreads[i]!.desired = want;
      const mine = new Map<number, number>();
      // Keep: claim the running instances on matching hosts, giving up the worst if over.
      const cands: number[] = [];
      let total = 0;
      for (const [h, n] of avail) {
        if (n > 0 && matches(slots[h]!.host.labels, sp.requirements)) {
          cands.push(h);
          total += n;
        }
      }
      if (want > 0 && cands.length > 0) {
        const claim = new Map(cands.map((h) => [h, avail.get(h)!]));
        if (total > want) {
          // Worst first: held out, then most instances of this version, most load, last id.
          const worst = new Heap<number>((a, b) => {
            const sa = slots[a]!;
            const sb = slots[b]!;
            if (sa.heldOut !== sb.heldOut) return sa.heldOut;
            const ca = claim.get(a)!;
            const cb = claim.get(b)!;
            if (ca !== cb) return ca > cb;
            if (sa.load !== sb.load) return sa.load > sb.load;
            return a > b;
          });
          for (const h of cands) worst.push(h);
          for (let excess = total - want; excess > 0; excess--) {
            const h = worst.pop()!;
            claim.set(h, claim.get(h)! - 1);
            if (claim.get(h)! > 0) worst.push(h);
          }
        }
        for (const [h, n] of claim) {
          if (n === 0) continue;
          avail.set(h, avail.get(h)! - n);
          mine.set(h, n);
          add(h, n);
          spreads[i]!.placed += n;
        }
      }
      spreads[i]!.running = spreads[i]!.placed;
      let need = want - spreads[i]!.placed;
      const eligible: number[] = [];
      for (const h of matchingHosts(ctx, sp.requirements)) {
        const slot = slots[h]!;
        const b = blockOf(slot);
        if (slot.heldOut) blocked[i]!.heldOut++;
        else if (b === OLD) blocked[i]!.old.push(h);
        else if (b === FOREIGN) {
          const what = foreignName(slot);
          blocked[i]!.foreign.set(what, (blocked[i]!.foreign.get(what) ?? 0) + 1);
        } else eligible.push(h);
      }
      // Place: one at a time on the least-loaded eligible host (load counts this plan's placements).
      if (need > 0 && eligible.length > 0) {
        const least = new Heap<number>((a, b) => {
          const la = slots[a]!.load;
          const lb = slots[b]!.load;
          if (la !== lb) return la < lb;
          const ta = tc[a]!;
          const tb = tc[b]!;
          return ta !== tb ? ta < tb : a < b;
        }, eligible.filter((h) => tc[h]! < MAX_INSTANCES_PER_HOST));
        while (need > 0 && least.size > 0) {
          const h = least.pop()!;
          add(h, 1);
          mine.set(h, (mine.get(h) ?? 0) + 1);
          spreads[i]!.placed++;
          need--;
          if (tc[h]! < MAX_INSTANCES_PER_HOST) least.push(h);
        }
      }
      if (need > 0) for (const h of blocked[i]!.old) freeCandidates.add(h);
      rebalance(slots, tc, target, mine, eligible, rebalanced);
    }
  }

  const running = sumOf(current, (c) => c.instances);
  const desired = spreads.reduce((a, s) => a + s.desired, 0);
  const placedIdeal = spreads.reduce((a, s) => a + s.placed, 0);
  const pending = [...target].some(([h, n]) => n > (current.get(h)?.instances ?? 0));

  // In-place replacement of an old build at this same version: one host at a time, only when
  // everything already started runs and some ready instance of the actor stays elsewhere.
  let free: number | undefined;
  let freeBlocked = false;
  if (freeCandidates.size > 0) {
    const readyTotal = sumOf(readyOfName, (n) => n);
    const pick = [...freeCandidates]
      .filter((h) => !slots[h]!.heldOut && readyTotal - (readyOfName.get(h) ?? 0) > 0)
      .sort((a, b) => (readyOfName.get(a) ?? 0) - (readyOfName.get(b) ?? 0) || a - b)[0];
    if (pick === undefined) freeBlocked = true;
    else if (!pending) free = pick;
  }

  for (const [i, s] of spreads.entries()) {
    const short = s.placed < s.desired || (spec.replicas === 'all' && desired === 0);
    if (short) s.reason = reasonOf(ctx, spec, key, i, s, blocked[i]!, freeBlocked);
  }

  // Actions. Reductions are limited to what runs beyond the desired count: an instance only
  // stops once its replacement (a rebalance, a weight change, a host relabelled) reports
  // running, and one that has no replacement to wait for (its spread matches no host now)
  // keeps serving rather than leave the actor short.
  const emitted = new Map(target);
  let budget = Math.max(0, running - desired);
  const reductions = [...current.keys()]
    .filter((h) => (target.get(h) ?? 0) < current.get(h)!.instances)
    .sort((a, b) => Number(slots[b]!.heldOut) - Number(slots[a]!.heldOut) || current.get(b)!.instances - current.get(a)!.instances || a - b);
  for (const h of reductions) {
    const cur = current.get(h)!.instances;
    const t = target.get(h) ?? 0;
    const r = Math.min(budget, cur - t);
    budget -= r;
    emitted.set(h, cur - r);
    slots[h]!.load += cur - r - t;
  }
  const actions: ActorAction[] = [];
  // Hosts in index order: those with a target, then those that lose their group entirely.
  const hostsInvolved = [...emitted.keys()];
  for (const h of current.keys()) if (!emitted.has(h)) hostsInvolved.push(h);
  hostsInvolved.sort((a, b) => a - b);
  const action = (kind: ActorAction['kind'], h: number, count: number, from: number, reason: ActionReason, revision = app.revision): ActorAction => ({
    kind,
    hostId: slots[h]!.host.id,
    actor: spec.name,
    version: spec.version,
    digest: spec.digest,
    count,
    from,
    policy: spec.policy,
    owner: revision === app.revision ? owner : { app: app.name, revision },
    reason,
  });
  for (const h of hostsInvolved) {
    const cur = current.get(h);
    const from = cur?.instances ?? 0;
    const count = emitted.get(h) ?? 0;
    if (count === 0) emitted.delete(h);
    const up: ActionReason = rebalanced.has(h) ? 'rebalance' : hasOld ? 'update' : 'place';
    if (!cur) {
      if (count > 0) actions.push(action('start', h, count, from, up));
    } else if (count === 0) {
      actions.push(action('stop', h, count, from, 'scale-down', cur.owner.revision));
    } else if (cur.owner.revision < app.revision) {
      actions.push(action('adopt', h, count, from, count > from ? up : count < from ? 'scale-down' : 'adopt'));
    } else if (count !== from) {
      actions.push(action('scale', h, count, from, count > from ? up : 'scale-down'));
    }
  }
  for (const h of keyed) block[h] = NONE;
  for (const h of target.keys()) tc[h] = 0;
  const placement: ActorPlacement = { name: spec.name, version: spec.version, digest: spec.digest, current: true, desired, placed: placedIdeal, running, spreads };
  return { actions, emitted, placement, free };
}

/**
 * Move instances of this spread from a host with at least 2 more of them and at least 2 more
 * load than an eligible host. Both conditions: a move lowers both sums of squares, so moves
 * never reverse and always end; load alone would shuffle instances whenever another app scales.
 * Donors go by most instances (then most load); each to the least-loaded receiver that has at
 * least 2 fewer. Heaps with snapshot entries (a changed host is pushed again, stale entries are
 * skipped), so a thousand joining hosts cost O(moves log hosts), not a scan per move.
 */
function rebalance(slots: Slot[], tc: Int32Array, target: Map<number, number>, mine: Map<number, number>, eligible: number[], rebalanced: Set<number>): void {
  if (mine.size === 0 || eligible.length === 0) return;
  const load = (h: number) => slots[h]!.load;
  let minLoad = Infinity;
  let minT = Infinity;
  for (const h of eligible) {
    if (load(h) < minLoad) minLoad = load(h);
    if (tc[h]! < minT) minT = tc[h]!;
  }
  // The common case: nothing to move (checked in one pass, without heaps).
  let any = false;
  for (const [x, n] of mine) if (n > 0 && tc[x]! - 2 >= minT && load(x) - 2 >= minLoad) any = true;
  if (!any) return;
  type Entry = { h: number; load: number; t: number };
  const snap = (h: number): Entry => ({ h, load: load(h), t: tc[h]! });
  const fresh = (e: Entry) => e.load === load(e.h) && e.t === tc[e.h];
  const receivers = new Heap<Entry>((a, b) => (a.load !== b.load ? a.load < b.load : a.t !== b.t ? a.t < b.t : a.h < b.h), eligible.map(snap));
  const donors = new Heap<Entry>(
    (a, b) => (a.t !== b.t ? a.t > b.t : a.load !== b.load ? a.load > b.load : a.h < b.h),
    [...mine].filter(([, n]) => n > 0).map(([h]) => snap(h)),
  );
  const isEligible = new Set(eligible);
  const aside: Entry[] = [];
  while (donors.size > 0) {
    const dx = donors.pop()!;
    if (!fresh(dx) || (mine.get(dx.h) ?? 0) === 0) continue;
    const x = dx.h;
    let y = -1;
    aside.length = 0;
    while (receivers.size > 0) {
      const r = receivers.pop()!;
      if (!fresh(r)) continue;
      if (r.load > load(x) - 2) {
        // The least-loaded receiver is too heavy: none can take from x.
        aside.push(r);
        break;
      }
      aside.push(r);
      if (r.h !== x && r.t <= tc[x]! - 2) {
        y = r.h;
        aside.pop();
        break;
      }
    }
    for (const r of aside) receivers.push(r);
    if (y < 0) continue;
    mine.set(x, mine.get(x)! - 1);
    target.set(x, tc[x]! - 1);
    tc[x]!--;
    slots[x]!.load--;
    mine.set(y, (mine.get(y) ?? 0) + 1);
    target.set(y, tc[y]! + 1);
    tc[y]!++;
    slots[y]!.load++;
    rebalanced.add(y);
    if (mine.get(x)! > 0) donors.push(snap(x));
    donors.push(snap(y));
    receivers.push(snap(y));
    if (isEligible.has(x)) receivers.push(snap(x));
  }
}

function reasonOf(ctx: Context, spec: AppActorSpec, key: string, i: number, s: SpreadPlacement, b: Blocked, freeBlocked: boolean): string {
  const req = spec.spread[i]!.requirements;
  const matching = matchingHosts(ctx, req).length;
  if (matching === 0) return `no host matches ${describeRequirements(req)}`;
  const parts: string[] = [];
  const hosts = (n: number) => `${n} host${n === 1 ? '' : 's'}`;
  if (b.heldOut > 0) parts.push(`${hosts(b.heldOut)} held out after flapping`);
  for (const [what, n] of b.foreign) parts.push(`${hosts(n)} already run ${key} ${what}`);
  if (b.old.length > 0) {
    parts.push(
      freeBlocked
        ? `${hosts(b.old.length)} run the previous build of ${key}, which cannot be replaced in place with no ready instance left: give the new build a new version`
        : `${hosts(b.old.length)} still run the previous build of ${key} (replaced one host at a time)`,
    );
  }
  const head = `${s.placed} of ${s.desired} placed`;
  return parts.length === 0 ? head : `${head}: of ${hosts(matching)} matching ${describeRequirements(req)}, ${parts.join(', ')}`;
}

function sumOf<V>(map: Map<number, V>, f: (v: V) => number): number {
  let n = 0;
  for (const v of map.values()) n += f(v);
  return n;
}
