import { describe, expect, it } from 'vitest';
import { WeightedPicker } from './picker.ts';
import { effectiveShares, planBase, planOrder } from './plan.ts';

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
