/**
 * Which versions of an actor a call tries, in order, and the traffic shares that gives: pure
 * functions of the live versions (ascending, from the lattice view) and the route's weights.
 */
import { stickyBucket } from '../canary/sticky.ts';
import { compareVersions } from '../versions/index.ts';
import type { Weights } from '../weights/index.ts';
import type { WeightedPicker } from './picker.ts';

/** What plans derive from the live versions and the weights, kept until either changes. */
export interface PlanBase {
  live: readonly string[];
  weights?: Weights;
  /** Weighted versions that are live, heaviest first. */
  liveWeighted: [string, number][];
  /** The same in the order sticky buckets are laid out: the canary first, then newest first. */
  stickyOrder: [string, number][];
  /** Sum of the live weights. */
  liveTotal: number;
  /** Live versions, highest first. */
  descending: readonly string[];
  /** The full order for each weighted first pick, built on first use. */
  orders: Map<string, readonly string[]>;
}

/** Derive the plan base of `live` (ascending versions), `weights` and the sticky canary, if named. */
export function planBase(live: readonly string[], weights: Weights | undefined, canary?: string): PlanBase {
  const liveWeighted = weights ? Object.entries(weights).filter(([v, w]) => w > 0 && live.includes(v)).sort((a, b) => b[1] - a[1]) : [];
  const stickyOrder = [...liveWeighted].sort((a, b) => (a[0] === canary ? -1 : b[0] === canary ? 1 : compareVersions(b[0], a[0])));
  const liveTotal = liveWeighted.reduce((sum, [, w]) => sum + w, 0);
  return { live, weights, liveWeighted, stickyOrder, liveTotal, descending: [...live].reverse(), orders: new Map() };
}

/**
 * Versions to try, in order: the weighted pick first, then the other live weighted versions by
 * weight, then the unweighted live versions, highest first. Without weights (or with none of
 * the weighted versions live) the highest live version comes first.
 */
export function planOrder(base: PlanBase, picker: WeightedPicker, stickyKey?: string): readonly string[] {
  const { liveWeighted, descending } = base;
  if (liveWeighted.length === 0) return descending;
  const first = stickyKey === undefined ? picker.pick(liveWeighted) : stickyPick(base, stickyKey);
  let order = base.orders.get(first);
  if (!order) {
    const built = [first];
    for (const [v] of liveWeighted) if (v !== first) built.push(v);
    // Unweighted live versions only as a last resort.
    for (const v of descending) if (!built.includes(v)) built.push(v);
    base.orders.set(first, (order = built));
  }
  return order;
}

/**
 * The share of calls (percent, one decimal) each version gets from planOrder: the live weighted
 * versions by weight; when none of them is live, all to the highest live version; versions that
 * are weighted but down, or live but unweighted, get 0.
 */
export function effectiveShares(base: PlanBase): Record<string, number> {
  const { weights, live, liveWeighted, descending } = base;
  const effective: Record<string, number> = {};
  for (const v of [...Object.keys(weights ?? {}), ...live]) effective[v] = 0;
  const total = liveWeighted.reduce((sum, [, w]) => sum + w, 0);
  if (total > 0) for (const [v, w] of liveWeighted) effective[v] = Math.round((w / total) * 1000) / 10;
  else if (descending[0] !== undefined) effective[descending[0]] = 100;
  return effective;
}

/**
 * The version a sticky key goes to: the key's bucket in [0, 100) (lattice/canary stickyBucket)
 * against the live weights laid out canary first (the weights document's sticky.canary, else the
 * newest version), then newest first: K1's stickyChoice, with the order computed once per weights
 * change instead of sorted per call. With stable and canary the key goes to the canary exactly
 * when its bucket is below the canary's weight; that range only grows with the weight, so a key
 * that reached the canary stays there. When a weighted version is down the ranges of the others
 * are stretched over [0, 100) in the same order.
 */
export function stickyPick(base: PlanBase, key: string): string {
  const { stickyOrder, liveTotal } = base;
  const at = (stickyBucket(key) * liveTotal) / 100;
  let end = 0;
  for (const [version, weight] of stickyOrder) {
    end += weight;
    if (at < end) return version;
  }
  return stickyOrder[stickyOrder.length - 1]![0];
}
