import { describe, expect, it } from 'vitest';
import { WeightedPicker } from './picker.ts';

const picks = (weights: [string, number][], n: number) => {
  const picker = new WeightedPicker();
  return Array.from({ length: n }, () => picker.pick(weights));
};

describe('WeightedPicker', () => {
  it('picker - every run of total-weight picks gives each version exactly its weight', () => {
    const weights: [string, number][] = [['a', 70], ['b', 20], ['c', 10]];
    const all = picks(weights, 1000);
    for (let start = 0; start < 1000; start += 100) {
      const run = all.slice(start, start + 100);
      expect(run.filter((v) => v === 'a')).toHaveLength(70);
      expect(run.filter((v) => v === 'b')).toHaveLength(20);
      expect(run.filter((v) => v === 'c')).toHaveLength(10);
    }
  });

  it('picker - picks are spread out, not bunched (nginx smooth weighted round robin)', () => {
    expect(picks([['a', 5], ['b', 1], ['c', 1]], 7).join('')).toBe('aabacaa');
    // 50/50 alternates.
    expect(picks([['x', 50], ['y', 50]], 6).join('')).toBe('xyxyxy');
    // The light version never waits longer than its share allows: one in ten, every ten.
    const light = picks([['heavy', 90], ['light', 10]], 100).flatMap((v, i) => (v === 'light' ? [i] : []));
    expect(light).toHaveLength(10);
    for (let i = 1; i < light.length; i++) expect(light[i]! - light[i - 1]!).toBe(10);
  });

  it('picker - a single version is always picked; no versions is a programming error', () => {
    expect(new Set(picks([['only', 3]], 5))).toEqual(new Set(['only']));
    expect(() => new WeightedPicker().pick([])).toThrow(/at least one/);
  });
});
