/**
 * Small pure helpers of the planner: exact shares by largest remainder, label requirements, a
 * binary heap, and the checks a spec must pass before it is planned.
 */
import type { AppRevision, Spread } from '../wire/apps.ts';
import { MAX_INSTANCES_PER_HOST } from '../wire/control.ts';

/**
 * Share `total` out by `weights` in exact integers (largest remainder, Hamilton's method): each
 * gets the floor of its quota, and the units left go to the largest fractional parts. Ties go to
 * the earlier weight, so the result depends on nothing but the input. Integer arithmetic only:
 * no float rounding can make a 60/40 split of 5 come out 2/3.
 */
export function largestRemainder(total: number, weights: readonly number[]): number[] {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`total must be a non-negative integer, got ${total}`);
  if (weights.length === 0) return [];
  for (const w of weights) if (!Number.isSafeInteger(w) || w <= 0) throw new RangeError(`weights must be positive integers, got ${w}`);
  const sum = weights.reduce((a, b) => a + b, 0);
  const shares = weights.map((w) => Math.floor((total * w) / sum));
  // Remainders as integers over `sum`: total*w mod sum.
  const order = weights.map((w, i) => ({ i, rest: (total * w) % sum })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  let left = total - shares.reduce((a, b) => a + b, 0);
  for (const { i } of order) {
    if (left === 0) break;
    shares[i]!++;
    left--;
  }
  return shares;
}

/** Does a host with these labels meet every requirement? */
export function matches(labels: Readonly<Record<string, string>>, requirements: Readonly<Record<string, string>>): boolean {
  for (const key in requirements) if (labels[key] !== requirements[key]) return false;
  return true;
}

/** "cloud=aws,region=eu" (keys sorted), or "any host" for no requirements. */
export function describeRequirements(requirements: Readonly<Record<string, string>>): string {
  const keys = Object.keys(requirements).sort();
  return keys.length === 0 ? 'any host' : keys.map((k) => `${k}=${requirements[k]}`).join(',');
}

/** A binary min-heap by `less`. */
export class Heap<T> {
  private readonly items: T[];
  /** `items` are taken over and heapified in O(n). */
  constructor(
    private readonly less: (a: T, b: T) => boolean,
    items: T[] = [],
  ) {
    this.items = items;
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }
  get size(): number {
    return this.items.length;
  }
  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      const t = a[i]!;
      a[i] = a[p]!;
      a[p] = t;
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      this.down(0);
    }
    return top;
  }
  private down(i: number): void {
    const a = this.items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      const t = a[i]!;
      a[i] = a[m]!;
      a[m] = t;
      i = m;
    }
  }
}

function spreadProblem(spread: readonly Spread[], where: string): string | undefined {
  if (!Array.isArray(spread) || spread.length === 0) return `${where}.spread: must list at least one spread`;
  const names = new Set<string>();
  for (const [i, s] of spread.entries()) {
    if (typeof s?.name !== 'string' || s.name === '') return `${where}.spread[${i}].name: must be a non-empty string`;
    if (names.has(s.name)) return `${where}.spread[${i}].name: "${s.name}" given twice`;
    names.add(s.name);
    if (!Number.isSafeInteger(s.weight) || s.weight <= 0) return `${where}.spread[${i}].weight: must be a positive integer`;
    if (typeof s.requirements !== 'object' || s.requirements === null || Object.values(s.requirements).some((v) => typeof v !== 'string')) {
      return `${where}.spread[${i}].requirements: must map label names to strings`;
    }
  }
  return undefined;
}

function replicasProblem(replicas: unknown, where: string): string | undefined {
  if (replicas === 'all') return undefined;
  if (typeof replicas !== 'number' || !Number.isSafeInteger(replicas) || replicas < 0) return `${where}.replicas: must be a non-negative integer or "all"`;
  return undefined;
}

/**
 * What makes an app unplannable, or undefined. The manifest parser refuses all of this before a
 * revision is stored; the planner checks again so that one bad document freezes only its own
 * app (left as it runs, status Failed) and never stops the reconciler planning the others.
 */
export function specProblem(app: AppRevision): string | undefined {
  const spec = app.spec;
  if (!spec || !Array.isArray(spec.actors) || !Array.isArray(spec.providers)) return 'spec: must hold actors and providers lists';
  const seen = new Set<string>();
  for (const [i, a] of spec.actors.entries()) {
    const where = `spec.actors[${i}]`;
    if (typeof a?.name !== 'string' || typeof a.version !== 'string' || typeof a.digest !== 'string') return `${where}: needs name, version and digest`;
    const key = `${a.name}@${a.version}`;
    if (seen.has(key)) return `${where}: ${key} listed twice`;
    seen.add(key);
    const problem = replicasProblem(a.replicas, where) ?? spreadProblem(a.spread, where);
    if (problem) return problem;
    if (typeof a.replicas === 'number' && a.replicas > MAX_INSTANCES_PER_HOST * 1000) return `${where}.replicas: at most ${MAX_INSTANCES_PER_HOST * 1000}`;
  }
  const kinds = new Set<string>();
  for (const [i, p] of spec.providers.entries()) {
    const where = `spec.providers[${i}]`;
    if (typeof p?.kind !== 'string') return `${where}.kind: must be a string`;
    if (kinds.has(p.kind)) return `${where}: provider ${p.kind} listed twice`;
    kinds.add(p.kind);
    const problem = replicasProblem(p.replicas, where) ?? spreadProblem(p.spread, where);
    if (problem) return problem;
  }
  return undefined;
}
