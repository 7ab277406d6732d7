import { describe, expect, it } from 'vitest';
import { applyBatch, formatApplied, parseApplied, refOf } from './increments.ts';

describe('increments (pure)', () => {
  it('increments - a batch gives each caller its own value, in order', () => {
    expect(applyBatch(10n, new Map(), [{ delta: 1n, ref: 'a' }, { delta: 5n, ref: 'b' }, { delta: -2n }])).toEqual({
      results: ['11', '16', '14'],
      next: 14n,
      added: [['a', '11'], ['b', '16']],
    });
  });

  it('increments - an already applied ref answers its recorded value and changes nothing', () => {
    const applied = parseApplied('b=7 a=3');
    expect(applyBatch(7n, applied, [{ delta: 1n, ref: 'a' }, { delta: 1n, ref: 'c' }, { delta: 1n, ref: 'c' }])).toEqual({
      results: ['3', '8', '8'],
      next: 8n,
      added: [['c', '8']],
    });
  });

  it('increments - the applied list keeps the newest refs first, bounded', () => {
    const previous = parseApplied('b=2 a=1');
    expect(formatApplied([['c', '3'], ['d', '4']], previous)).toBe('d=4 c=3 b=2 a=1');
    expect(formatApplied([['c', '3'], ['d', '4']], previous, 3)).toBe('d=4 c=3 b=2');
    expect(parseApplied(formatApplied([['c', '3']], previous))).toEqual(new Map([['c', '3'], ['b', '2'], ['a', '1']]));
    expect(parseApplied(undefined).size).toBe(0);
  });

  it('increments - refs are compact, stable, and tell invocations and sequence numbers apart', () => {
    const id = '0b7f3c2e-6a51-4c0e-9d2a-1f4e5b6c7d8e';
    expect(refOf({ id, seq: 1 })).toBe(refOf({ id, seq: 1 }));
    expect(refOf({ id, seq: 1 })).not.toBe(refOf({ id, seq: 2 }));
    expect(refOf({ id, seq: 1 })).not.toBe(refOf({ id: `${id}x`, seq: 1 }));
    expect(refOf({ id, seq: 36 })).toMatch(/^[A-Za-z0-9_-]{10}\.10$/);
  });
});
