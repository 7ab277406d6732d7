import { describe, expect, it } from 'vitest';
import { BOUNDS, BUCKETS, HISTOGRAM_SCHEMA, bucketIndex, emptyHistogram, histogramFromWire, histogramToWire, merge, observe, quantile, total } from './histogram.ts';

/** A small seeded PRNG (mulberry32): the data differ per case but never between runs. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

function histogramOf(values: number[]) {
  const h = emptyHistogram();
  for (const v of values) observe(h, v);
  return h;
}

describe('histogram layout', () => {
  it('histogram - bounds grow by 2^(1/4) from 0.1 ms to past one hour', () => {
    expect(BOUNDS[0]).toBeCloseTo(0.1, 12);
    for (let i = 1; i < BOUNDS.length; i++) expect(BOUNDS[i]! / BOUNDS[i - 1]!).toBeCloseTo(2 ** 0.25, 12);
    expect(BOUNDS.at(-1)!).toBeGreaterThan(3_600_000);
    expect(BOUNDS.at(-2)!).toBeLessThanOrEqual(3_600_000);
    expect(BUCKETS).toBe(BOUNDS.length + 1);
  });

  it('histogram - a value at a bound belongs to that bound, just above it to the next (le semantics)', () => {
    for (let i = 0; i < BOUNDS.length; i++) {
      expect(bucketIndex(BOUNDS[i]!)).toBe(i);
      expect(bucketIndex(BOUNDS[i]! * 1.000001)).toBe(i + 1);
    }
    expect(bucketIndex(0)).toBe(0);
    expect(bucketIndex(-5)).toBe(0);
    expect(bucketIndex(Number.NaN)).toBe(0);
    expect(bucketIndex(1e12)).toBe(BOUNDS.length);
  });
});

describe('histogram quantiles', () => {
  it('histogram - quantiles are within one bucket (19 %) of the exact value, over many shapes', () => {
    const random = rng(7);
    const shapes: Record<string, () => number> = {
      uniform: () => 5 + random() * 50,
      lognormal: () => Math.exp(2 + 1.5 * Math.sqrt(-2 * Math.log(random() || 1e-9)) * Math.cos(2 * Math.PI * random())),
      bimodal: () => (random() < 0.9 ? 2 + random() : 800 + random() * 100),
    };
    for (const [name, draw] of Object.entries(shapes)) {
      const values = Array.from({ length: 20_000 }, draw);
      const h = histogramOf(values);
      expect(total(h), name).toBe(20_000);
      for (const q of [0.5, 0.9, 0.99]) {
        const exact = exactQuantile(values, q);
        const estimate = quantile(h, q)!;
        expect(Math.abs(estimate - exact) / exact, `${name} q=${q}: ${estimate} vs ${exact}`).toBeLessThan(0.19);
      }
    }
  });

  it('histogram - an empty histogram has no quantile; a bad q is refused with a code', () => {
    expect(quantile(emptyHistogram(), 0.99)).toBeUndefined();
    expect(() => quantile(emptyHistogram(), 1.5)).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
  });

  it('histogram - a quantile in the overflow bucket reads as the highest bound, above any p99 limit', () => {
    const h = histogramOf([5_000_000, 6_000_000]);
    expect(quantile(h, 0.99)).toBe(BOUNDS.at(-1));
    expect(quantile(h, 0.99)!).toBeGreaterThan(3_600_000);
  });

  it('histogram - p99 of two reporters merged is the p99 of all requests; averaging their p99s is not', () => {
    // Host A: 1000 fast requests. Host B: 1000 requests, half of them slow (900 ms).
    const a = histogramOf(Array.from({ length: 1000 }, (_, i) => 10 + (i % 5)));
    const b = histogramOf(Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? 10 + (i % 5) : 900)));
    const merged = merge(a, b);
    expect(total(merged)).toBe(2000);
    // A quarter of all requests took 900 ms: the p99 of the lattice is 900 ms (within a bucket).
    const p99 = quantile(merged, 0.99)!;
    expect(p99).toBeGreaterThan(900 / 1.19);
    expect(p99).toBeLessThan(900 * 1.19);
    // Averaging the reporters' p99s gives about 455 ms: under a 500 ms limit the merged p99 fails.
    const averaged = (quantile(a, 0.99)! + quantile(b, 0.99)!) / 2;
    expect(averaged).toBeLessThan(500);
    expect(p99).toBeGreaterThan(500);
  });

  it('histogram - merge adds counts and sums and leaves its inputs alone', () => {
    const a = histogramOf([1, 2, 3]);
    const b = histogramOf([3, 400]);
    const m = merge(a, b);
    expect(total(m)).toBe(5);
    expect(m.sumMs).toBe(409);
    expect(total(a)).toBe(3);
    expect(m.counts[bucketIndex(3)]).toBe(2);
  });
});

describe('histogram wire form', () => {
  it('histogram - only the run of non-zero buckets travels, and it reads back the same', () => {
    const h = histogramOf([12, 13, 14, 15, 200]);
    const w = histogramToWire(h);
    expect(w.schema).toBe(HISTOGRAM_SCHEMA);
    expect(w.offset).toBe(bucketIndex(12));
    expect(w.counts.length).toBe(bucketIndex(200) - bucketIndex(12) + 1);
    expect(histogramFromWire(w)).toEqual(h);
    expect(histogramToWire(emptyHistogram())).toEqual({ schema: HISTOGRAM_SCHEMA, offset: 0, counts: [], sumMs: 0 });
    expect(histogramFromWire(histogramToWire(emptyHistogram()))).toEqual(emptyHistogram());
  });

  it('histogram - another schema, bad offsets and bad counts are refused with TRELLIS_BAD_REQUEST', () => {
    const ok = histogramToWire(histogramOf([5]));
    const cases: [unknown, RegExp][] = [
      [{ ...ok, schema: 2 }, /schema 2/],
      [{ ...ok, offset: -1 }, /offset/],
      [{ ...ok, offset: BUCKETS }, /at most/],
      [{ ...ok, counts: [1.5] }, /bucket/],
      [{ ...ok, counts: [-1] }, /bucket/],
      [{ ...ok, sumMs: -3 }, /sumMs/],
      [null, /not an object/],
    ];
    for (const [value, message] of cases) {
      expect(() => histogramFromWire(value as never)).toThrow(message);
      expect(() => histogramFromWire(value as never)).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    }
  });
});
