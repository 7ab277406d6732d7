import { describe, expect, it } from 'vitest';
import { stickyBucket, stickyChoice } from '../canary/sticky.ts';
import { WeightedPicker } from './picker.ts';
import { effectiveShares, planBase, planOrder, stickyPick } from './plan.ts';

describe('plan', () => {
  it('plan - without weights the highest live version comes first, then the others descending', () => {
    const base = planBase(['1.0.0', '1.1.0', '2.0.0'], undefined);
    expect(planOrder(base, new WeightedPicker())).toEqual(['2.0.0', '1.1.0', '1.0.0']);
  });

  it('plan - the weighted pick first, then the other weighted versions by weight, then the unweighted ones', () => {
    const base = planBase(['1.0.0', '1.1.0', '1.2.0', '3.0.0'], { '1.0.0': 20, '1.1.0': 80, '9.9.9': 0 });
    const picker = new WeightedPicker();
    const orders = Array.from({ length: 5 }, () => planOrder(base, picker));
    // 80/20 over five calls: four start with 1.1.0, one with 1.0.0.
    expect(orders.filter((o) => o[0] === '1.1.0')).toHaveLength(4);
    expect(orders.find((o) => o[0] === '1.0.0')).toEqual(['1.0.0', '1.1.0', '3.0.0', '1.2.0']);
    expect(orders.find((o) => o[0] === '1.1.0')).toEqual(['1.1.0', '1.0.0', '3.0.0', '1.2.0']);
    // Orders are built once per first pick and reused (the hot path allocates nothing).
    const byFirst = new Map(orders.map((o) => [o[0], o]));
    expect(orders.every((o) => o === byFirst.get(o[0]))).toBe(true);
  });

  it('plan - weighted versions that are down are skipped; when all are down, the highest live version serves', () => {
    const someDown = planBase(['1.0.0', '2.0.0'], { '1.0.0': 50, '1.5.0': 50 });
    expect(someDown.liveWeighted).toEqual([['1.0.0', 50]]);
    expect(planOrder(someDown, new WeightedPicker())).toEqual(['1.0.0', '2.0.0']);
    const allDown = planBase(['1.0.0', '2.0.0'], { '3.0.0': 60, '4.0.0': 40 });
    expect(planOrder(allDown, new WeightedPicker())).toEqual(['2.0.0', '1.0.0']);
    expect(planOrder(planBase([], { '1.0.0': 100 }), new WeightedPicker())).toEqual([]);
  });
});

describe('effectiveShares', () => {
  it('shares - live weighted versions split by weight; unweighted live ones and down weighted ones get 0', () => {
    expect(effectiveShares(planBase(['1.0.0', '1.1.0', '2.0.0'], { '1.0.0': 1, '1.1.0': 2, '5.0.0': 97 }))).toEqual({ '1.0.0': 33.3, '1.1.0': 66.7, '5.0.0': 0, '2.0.0': 0 });
  });

  it('shares - when every weighted version is down, the highest live version takes all', () => {
    expect(effectiveShares(planBase(['1.0.0', '2.0.0'], { '3.0.0': 90, '4.0.0': 10 }))).toEqual({ '3.0.0': 0, '4.0.0': 0, '1.0.0': 0, '2.0.0': 100 });
  });

  it('shares - no weights: the highest live version takes all; nothing live: all zero', () => {
    expect(effectiveShares(planBase(['1.0.0', '1.2.0'], undefined))).toEqual({ '1.0.0': 0, '1.2.0': 100 });
    expect(effectiveShares(planBase([], { '1.0.0': 100 }))).toEqual({ '1.0.0': 0 });
  });
});

describe('plan - sticky keys', () => {
  const keys = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
  const canaryKeys = (canary: number) => {
    const base = planBase(['1.0.0', '1.1.0'], { '1.0.0': 100 - canary, '1.1.0': canary });
    return new Set(keys.filter((k) => planOrder(base, new WeightedPicker(), k)[0] === '1.1.0'));
  };

  it('plan - a key goes to the canary (the newer version) exactly when its bucket is below the canary weight', () => {
    const base = planBase(['1.0.0', '1.1.0'], { '1.0.0': 70, '1.1.0': 30 });
    for (const k of keys.slice(0, 300)) {
      expect(planOrder(base, new WeightedPicker(), k)[0]).toBe(stickyBucket(k) < 30 ? '1.1.0' : '1.0.0');
      // The rest of the order is the usual fallback.
      expect(planOrder(base, new WeightedPicker(), k)).toHaveLength(2);
    }
  });

  it('plan - the same key always gets the same version, whatever the round robin state', () => {
    const base = planBase(['1.0.0', '1.1.0'], { '1.0.0': 50, '1.1.0': 50 });
    const picker = new WeightedPicker();
    const first = planOrder(base, picker, 'alice')[0];
    for (let i = 0; i < 20; i++) {
      planOrder(base, picker); // round robin calls in between
      expect(planOrder(base, picker, 'alice')[0]).toBe(first);
    }
  });

  it('plan - keys on the canary at 10 % stay there at 30 % and 50 %, and the shares follow the weights', () => {
    const at10 = canaryKeys(10);
    const at30 = canaryKeys(30);
    const at50 = canaryKeys(50);
    for (const k of at10) expect(at30.has(k)).toBe(true);
    for (const k of at30) expect(at50.has(k)).toBe(true);
    // 2000 keys: each share within a few points of its weight.
    expect(at10.size / keys.length).toBeGreaterThan(0.06);
    expect(at10.size / keys.length).toBeLessThan(0.14);
    expect(at50.size / keys.length).toBeGreaterThan(0.45);
    expect(at50.size / keys.length).toBeLessThan(0.55);
    expect(canaryKeys(0).size).toBe(0);
    expect(canaryKeys(100).size).toBe(keys.length);
  });

  it('plan - with a weighted version down its keys spread over the live ones; without weights the key changes nothing', () => {
    const down = planBase(['1.0.0'], { '1.0.0': 70, '1.1.0': 30 });
    for (const k of keys.slice(0, 50)) expect(planOrder(down, new WeightedPicker(), k)[0]).toBe('1.0.0');
    const unweighted = planBase(['1.0.0', '2.0.0'], undefined);
    expect(planOrder(unweighted, new WeightedPicker(), 'alice')).toEqual(['2.0.0', '1.0.0']);
  });

  it('plan - the precomputed sticky pick is K1\'s stickyChoice for every bucket (it only avoids a sort per call)', () => {
    const byBucket = new Map<number, string>();
    for (let i = 0; byBucket.size < 100; i++) byBucket.set(stickyBucket(`k${i}`), `k${i}`);
    const cases: Record<string, number>[] = [{ '1.0.0': 90, '1.1.0': 10 }, { '1.0.0': 50, '1.1.0': 30, '2.0.0': 20 }, { '1.0.0': 100, '1.1.0': 0 }];
    for (const weights of cases) {
      const base = planBase(Object.keys(weights), weights);
      for (const [bucket, key] of byBucket) expect(stickyPick(base, key)).toBe(stickyChoice(bucket, weights));
    }
    // A named canary owns the lowest buckets even when it is the older version (a roll-back canary).
    const weights = { '2.0.0': 90, '1.9.0': 10 };
    const named = planBase(['1.9.0', '2.0.0'], weights, '1.9.0');
    for (const [bucket, key] of byBucket) {
      expect(stickyPick(named, key)).toBe(stickyChoice(bucket, weights, '1.9.0'));
      expect(stickyPick(named, key)).toBe(bucket < 10 ? '1.9.0' : '2.0.0');
    }
  });
});
