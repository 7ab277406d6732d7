import { describe, expect, it } from 'vitest';
import { cookieValue, stickyBucket, stickyChoice, stickyToCanary } from './sticky.ts';

const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

describe('sticky keys', () => {
  it('sticky - a bucket is an integer in [0, 100), the same for the same key every time', () => {
    for (const key of [...keys.slice(0, 500), '', 'ü-ñ-日本', 'a'.repeat(10_000)]) {
      const b = stickyBucket(key);
      expect(Number.isInteger(b)).toBe(true);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(100);
      expect(stickyBucket(key)).toBe(b);
    }
  });

  it('sticky - the hash is pinned: known keys keep their buckets across releases', () => {
    // Changing the hash would move live keys between versions mid-rollout; these values are the contract.
    expect(['alice', 'bob', 'user-1', 'user-2', ''].map(stickyBucket)).toEqual(PINNED);
  });

  it('sticky - similar keys spread over all buckets (each holds 100 ± 40 of 10,000 keys)', () => {
    const counts = new Array<number>(100).fill(0);
    for (const key of keys) counts[stickyBucket(key)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(60);
    expect(Math.max(...counts)).toBeLessThan(140);
  });

  it('sticky - a key that reached the canary stays there as the weight grows 10 → 30 → 50 → 100', () => {
    let onCanary = new Set<string>();
    for (const weight of [10, 30, 50, 100]) {
      const now = new Set(keys.filter((k) => stickyToCanary(k, weight)));
      for (const k of onCanary) expect(now.has(k), `${k} left the canary at ${weight} %`).toBe(true);
      // And the share is the weight (within 2 points over 10,000 keys).
      expect(Math.abs((100 * now.size) / keys.length - weight)).toBeLessThan(2);
      onCanary = now;
    }
    expect(onCanary.size).toBe(keys.length);
    expect(keys.some((k) => stickyToCanary(k, 0))).toBe(false);
  });

  it('sticky - stickyChoice with stable and canary is the canary rule, whatever the order of the weights', () => {
    for (const weight of [0, 10, 30, 50, 100]) {
      for (const key of keys.slice(0, 2000)) {
        const expected = stickyToCanary(key, weight) ? '1.1.0' : '1.0.0';
        expect(stickyChoice(stickyBucket(key), { '1.0.0': 100 - weight, '1.1.0': weight }, '1.1.0')).toBe(expected);
        expect(stickyChoice(stickyBucket(key), { '1.1.0': weight, '1.0.0': 100 - weight }, '1.1.0')).toBe(expected);
      }
    }
  });

  it('sticky - stickyChoice covers more versions in a fixed order, and skips versions without weight', () => {
    const w = { '1.0.0': 50, '2.0.0': 30, '1.5.0': 20 };
    // No canary named: highest version first.
    expect(stickyChoice(0, w)).toBe('2.0.0');
    expect(stickyChoice(29, w)).toBe('2.0.0');
    expect(stickyChoice(30, w)).toBe('1.5.0');
    expect(stickyChoice(50, w)).toBe('1.0.0');
    expect(stickyChoice(99, w)).toBe('1.0.0');
    expect(stickyChoice(5, { '1.0.0': 100, '1.1.0': 0 }, '1.1.0')).toBe('1.0.0');
    expect(stickyChoice(5, {})).toBeUndefined();
  });

  it('sticky - cookieValue reads one cookie from a Cookie header', () => {
    expect(cookieValue('a=1; session=abc; b=2', 'session')).toBe('abc');
    expect(cookieValue('session="quoted value"', 'session')).toBe('quoted value');
    expect(cookieValue('xsession=1; session=2', 'session')).toBe('2');
    expect(cookieValue('a=1; b', 'b')).toBeUndefined();
    expect(cookieValue(undefined, 'session')).toBeUndefined();
    expect(cookieValue('session=first; session=second', 'session')).toBe('first');
    expect(cookieValue('token=a=b', 'token')).toBe('a=b');
  });
});

// Cross-checked with an independent implementation (Python, arbitrary-precision integers).
const PINNED = [91, 97, 46, 19, 66];
