/**
 * Latency histograms with one fixed bucket layout shared by every reporter, so windows from
 * any number of hosts and gateways merge by adding bucket counts, and a quantile is read from
 * the merged counts. Percentiles are never averaged: the mean of two p99s is no quantile of
 * anything (a slow host with half the traffic hides behind a fast one).
 *
 * The layout is Prometheus native histograms' schema 2 (each bucket 2^(1/4) ≈ 1.19 times the
 * last), copied because its relative error is bounded (a quantile is within one bucket, under
 * 19 %, and under about 9 % with interpolation) at a fixed cost per observation, whatever the
 * latencies are. It starts at 0.1 ms and reaches past one hour: CanarySpec allows a p99 limit
 * of up to 3,600,000 ms, and a limit beyond the last bound could not be judged.
 */
import { TrellisError } from '../errors/index.ts';
import type { HistogramWire } from '../wire/index.ts';

/** Identifies the layout on the wire; a reporter with another layout is refused, never mixed. */
export const HISTOGRAM_SCHEMA = 1;
const LOWEST_MS = 0.1;
const PER_DOUBLING = 4;
/** Finite upper bounds in ms (bucket i holds lower < v <= BOUNDS[i]), then one overflow bucket. */
export const BOUNDS: readonly number[] = Object.freeze(
  (() => {
    const out: number[] = [];
    for (let i = 0; ; i++) {
      const bound = LOWEST_MS * 2 ** (i / PER_DOUBLING);
      out.push(bound);
      if (bound > 3_600_000) return out;
    }
  })(),
);
/** Buckets in a histogram: the finite ones plus overflow. */
export const BUCKETS = BOUNDS.length + 1;

/** A histogram in memory: dense counts over the shared layout. */
export interface Histogram {
  counts: number[];
  sumMs: number;
}

export function emptyHistogram(): Histogram {
  return { counts: new Array<number>(BUCKETS).fill(0), sumMs: 0 };
}

/** The bucket of a latency: the first whose upper bound is at or above it. */
export function bucketIndex(ms: number): number {
  if (!(ms > LOWEST_MS)) return 0; // also NaN and negatives: a clock step must not throw on the hot path
  // The logarithm lands on the bucket or next to it (floating point at the bounds); the bounds decide.
  let i = Math.min(BOUNDS.length, Math.max(0, Math.ceil(PER_DOUBLING * Math.log2(ms / LOWEST_MS))));
  while (i > 0 && ms <= BOUNDS[i - 1]!) i--;
  while (i < BOUNDS.length && ms > BOUNDS[i]!) i++;
  return i;
}

/** Count one latency (`times` requests of that latency). */
export function observe(h: Histogram, ms: number, times = 1): void {
  h.counts[bucketIndex(ms)]! += times;
  if (ms > 0) h.sumMs += ms * times;
}

/** Requests counted. */
export function total(h: Histogram): number {
  let n = 0;
  for (const c of h.counts) n += c;
  return n;
}

/** Add `from` into `into` (merging windows of many reporters, or of many seconds). */
export function mergeInto(into: Histogram, from: Histogram): Histogram {
  for (let i = 0; i < BUCKETS; i++) into.counts[i]! += from.counts[i]!;
  into.sumMs += from.sumMs;
  return into;
}

/** A new histogram holding all of them. */
export function merge(...hs: Histogram[]): Histogram {
  const out = emptyHistogram();
  for (const h of hs) mergeInto(out, h);
  return out;
}

/**
 * The q-quantile in ms (q from 0 to 1), undefined when the histogram is empty. Within its
 * bucket the value is interpolated linearly, as Prometheus' histogram_quantile does; a
 * quantile in the overflow bucket reads as the highest finite bound (again like Prometheus),
 * which is above every limit a CanarySpec may set.
 */
export function quantile(h: Histogram, q: number): number | undefined {
  if (!(q >= 0 && q <= 1)) throw new TrellisError('TRELLIS_BAD_REQUEST', `quantile must be from 0 to 1, got ${q}`);
  const n = total(h);
  if (n === 0) return undefined;
  const rank = q * n;
  let below = 0;
  for (let i = 0; i < BUCKETS; i++) {
    const c = h.counts[i]!;
    if (c === 0) continue;
    if (below + c >= rank) {
      if (i === BOUNDS.length) return BOUNDS[BOUNDS.length - 1]!;
      const lower = i === 0 ? 0 : BOUNDS[i - 1]!;
      const upper = BOUNDS[i]!;
      return lower + ((upper - lower) * Math.max(0, rank - below)) / c;
    }
    below += c;
  }
  return BOUNDS[BOUNDS.length - 1]!; // not reached: rank <= n
}

/** The wire form: only the run of buckets between the first and last non-zero one. */
export function histogramToWire(h: Histogram): HistogramWire {
  let first = h.counts.findIndex((c) => c !== 0);
  if (first < 0) return { schema: HISTOGRAM_SCHEMA, offset: 0, counts: [], sumMs: 0 };
  let last = BUCKETS - 1;
  while (h.counts[last] === 0) last--;
  return { schema: HISTOGRAM_SCHEMA, offset: first, counts: h.counts.slice(first, last + 1), sumMs: h.sumMs };
}

/**
 * Add a wire histogram into `into`, checking it first: TRELLIS_BAD_REQUEST for another layout
 * or bad counts, and `into` is left as it was. No allocation: the controller merges one
 * window per reporter per second.
 */
export function mergeWireInto(into: Histogram, w: HistogramWire): Histogram {
  const bad = (why: string) => new TrellisError('TRELLIS_BAD_REQUEST', `histogram: ${why}`);
  if (typeof w !== 'object' || w === null) throw bad('not an object');
  if (w.schema !== HISTOGRAM_SCHEMA) throw bad(`schema ${String(w.schema)} is not ${HISTOGRAM_SCHEMA}; reporters of another version cannot be merged`);
  if (!Number.isSafeInteger(w.offset) || w.offset < 0) throw bad(`offset must be a non-negative integer, got ${String(w.offset)}`);
  if (!Array.isArray(w.counts) || w.offset + w.counts.length > BUCKETS) throw bad(`counts must be a list of at most ${BUCKETS - w.offset} buckets`);
  if (typeof w.sumMs !== 'number' || !(w.sumMs >= 0)) throw bad(`sumMs must be a number >= 0, got ${String(w.sumMs)}`);
  for (let i = 0; i < w.counts.length; i++) {
    const c = w.counts[i];
    if (!Number.isSafeInteger(c) || (c as number) < 0) throw bad(`bucket ${w.offset + i} must hold a non-negative integer, got ${String(c)}`);
  }
  for (let i = 0; i < w.counts.length; i++) into.counts[w.offset + i]! += w.counts[i]!;
  into.sumMs += w.sumMs;
  return into;
}

/** Read and check a wire histogram (see mergeWireInto). */
export function histogramFromWire(w: HistogramWire): Histogram {
  return mergeWireInto(emptyHistogram(), w);
}
