import { describe, expect, it } from 'vitest';
import { summarize } from '../canary/analysis.ts';
import { quantile } from '../canary/histogram.ts';
import { decode, encode } from '../wire/index.ts';
import { WindowAccumulator, fromWire, mergeVersions, toWire } from './windows.ts';

describe('traffic windows', () => {
  it('windows - take returns what was counted since the last take, zeroes it, and nothing when idle', () => {
    const w = new WindowAccumulator();
    const held = w.entry('a', '1.0.0');
    held.requests += 2;
    w.add('a', '1.0.0', 3, 1, [1, 2, 3]);
    const first = w.take('h1', 1000)!;
    expect(first.participant).toBe('h1');
    expect(first.versions).toMatchObject([{ actor: 'a', version: '1.0.0', requests: 5, failures: 1 }]);
    expect(w.take('h1')).toBeUndefined();
    // The entry a caller holds keeps counting into the next window.
    held.failures += 1;
    held.requests += 1;
    expect(w.take('h1')!.versions).toMatchObject([{ requests: 1, failures: 1 }]);
  });

  it('windows - survive msgpack and merge across participants by adding counts and buckets', () => {
    const a = new WindowAccumulator();
    const b = new WindowAccumulator();
    a.add('svc', '1.0.0', 90, 0, Array(90).fill(2));
    a.add('svc', '1.1.0', 10, 1, Array(10).fill(2));
    b.add('svc', '1.1.0', 10, 0, Array(10).fill(400));
    b.add('other', '1.0.0', 5, 5);
    const wire = [a.take('h1')!, b.take('h2')!].map((r) => fromWire(decode(encode(toWire(r)))));
    const merged = mergeVersions(wire, 'svc');
    expect(Object.keys(merged).sort()).toEqual(['1.0.0', '1.1.0']);
    expect(summarize(merged['1.0.0']!)).toMatchObject({ requests: 90, failures: 0, successRate: 1 });
    const canary = summarize(merged['1.1.0']!);
    expect(canary).toMatchObject({ requests: 20, failures: 1, successRate: 0.95 });
    // The p99 of the merged canary is the slow host's, not an average of the two hosts' p99s.
    expect(canary.p99Ms!).toBeGreaterThan(300);
    expect(quantile(merged['1.1.0']!.histogram, 0.25)!).toBeLessThan(3);
  });

  it('windows - a malformed report is refused with TRELLIS_BAD_REQUEST', () => {
    expect(() => fromWire({ p: 'h', v: [['a', '1.0.0', { requests: -1, failures: 0, histogram: { schema: 1, offset: 0, counts: [], sumMs: 0 } }]] })).toThrow(/counts/);
    expect(() => fromWire({ p: 'h', v: [['a', '1.0.0', { requests: 1, failures: 0, histogram: { schema: 99, offset: 0, counts: [], sumMs: 0 } }]] })).toThrow(/schema/);
    // A version named like a prototype key stays a plain entry.
    const odd = fromWire({ p: 'h', v: [['a', '__proto__', { requests: 1, failures: 0, histogram: { schema: 1, offset: 0, counts: [], sumMs: 0 } }]] });
    expect(Object.hasOwn(mergeVersions([odd], 'a'), '__proto__')).toBe(true);
    expect(() => fromWire('nope')).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
  });
});
