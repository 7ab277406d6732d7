import { describe, expect, it } from 'vitest';
import { callDeadlineMs, compileRpcOptions } from './options.ts';

describe('rpc options', () => {
  it('rpc options - defaults, and values that would hang or spin a call are refused naming the option', () => {
    expect(compileRpcOptions({ lattice: 'l' })).toEqual({ lattice: 'l', caller: 'client', deadlineMs: 10_000, attemptTimeoutMs: 2000, minAttemptTimeoutMs: 500 });
    expect(() => compileRpcOptions({ lattice: 'l', deadlineMs: Number.NaN })).toThrow(/option deadlineMs: must be an integer from 1/);
    expect(() => compileRpcOptions({ lattice: 'l', deadlineMs: 0 })).toThrow(/deadlineMs/);
    // Below twice the take margin no worker would ever take a call: every attempt would be dropped.
    expect(() => compileRpcOptions({ lattice: 'l', attemptTimeoutMs: 0 })).toThrow(/option attemptTimeoutMs: must be an integer from 100/);
    expect(compileRpcOptions({ lattice: 'l', attemptTimeoutMs: 300 }).minAttemptTimeoutMs).toBe(300);
    expect(() => compileRpcOptions({ lattice: 'a b' })).toThrow(/--lattice/);
  });

  it('rpc options - a per-call deadline is checked, the default applies when none is given', () => {
    expect(callDeadlineMs(undefined, 10_000)).toBe(10_000);
    expect(callDeadlineMs(250, 10_000)).toBe(250);
    for (const bad of [Number.NaN, 0, -1, 1.5, 10 * 3_600_000]) expect(() => callDeadlineMs(bad, 10_000)).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
  });
});
