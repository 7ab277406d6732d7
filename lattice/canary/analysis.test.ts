import { describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS, type CanarySpec } from '../apps/canary.ts';
import type { CanaryState } from '../wire/index.ts';
import { NO_DATA, actualWeight, addWindows, analyze, emptyTotals, summarize, type AnalysisWindow, type VersionTotals } from './analysis.ts';
import { emptyHistogram, histogramToWire, observe, quantile } from './histogram.ts';
import { begin, pause, start } from './machine.ts';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const spec: CanarySpec = { ...CANARY_DEFAULTS, steps: [10, 30, 50, 100], intervalMs: 30_000, minRequests: 100, successRate: 0.99, p99Ms: 500, failureLimit: 2, progressDeadlineMs: 600_000 };

/** A run at step 1, its window starting at T0. */
function running(s: CanarySpec = spec): CanaryState {
  return begin(start(undefined, { actor: 'greeter', stable: '1.0.0', canary: '1.1.0', spec: s }, T0 - 5000).state, T0).state;
}

/** `requests` requests of which `failures` failed, the successful ones taking `ms` each. */
function totals(requests: number, failures = 0, ms = 20): VersionTotals {
  const t = emptyTotals();
  t.requests = requests;
  t.failures = failures;
  observe(t.histogram, ms, requests);
  return t;
}

const win = (canary: VersionTotals, stable = totals(900)): AnalysisWindow => ({ stable, canary });
const after = (ms: number) => T0 + ms;

describe('analysis: enough data', () => {
  it('analysis - a healthy step is promoted only once its window holds minRequests canary requests', () => {
    const state = running();
    const short = analyze(win(totals(99)), spec, state, after(31_000));
    expect(short.kind).toBe('wait');
    expect(short.reason).toBe('too little data: 99 of 100 canary requests');
    expect(short.numbers).toMatchObject({ canaryRequests: 99, minRequests: 100 });
    const enough = analyze(win(totals(100)), spec, state, after(31_000));
    expect(enough.kind).toBe('promote-step');
    expect(enough).toMatchObject({ generation: state.generation, step: 1 });
    expect(enough.reason).toMatch(/^step 1 healthy: success rate 100.00 %/);
  });

  it('analysis - one check per interval: a full window waits until the interval is over', () => {
    const state = running();
    expect(analyze(win(totals(5000)), spec, state, after(29_999)).kind).toBe('wait');
    expect(analyze(win(totals(5000)), spec, state, after(30_000)).kind).toBe('promote-step');
  });

  it('analysis - the last step healthy means promoted', () => {
    const state: CanaryState = { ...running(), step: 4, weight: { set: 100 } };
    const d = analyze(win(totals(200), totals(0)), spec, state, after(30_000));
    expect(d.kind).toBe('promoted');
    expect(d.reason).toMatch(/^last step healthy/);
  });
});

describe('analysis: thresholds', () => {
  it('analysis - a success rate below the threshold is a failed check, with the numbers in the reason', () => {
    const d = analyze(win(totals(1000, 100)), spec, running(), after(30_000));
    expect(d.kind).toBe('fail-check');
    expect(d.reason).toBe('success rate 90.00 % below 99.00 % (900 of 1000 ok); failed checks 1 of 2');
    expect(d.numbers).toMatchObject({ canaryRequests: 1000, canaryFailures: 100, successRate: 0.9, minSuccessRate: 0.99, failedChecks: 1, failureLimit: 2 });
  });

  it('analysis - the check that reaches failureLimit is a rollback, saying so with the numbers', () => {
    const state = { ...running(), failedChecks: 1 };
    const d = analyze(win(totals(1000, 100)), spec, state, after(30_000));
    expect(d.kind).toBe('rollback');
    expect(d.reason).toBe('success rate 90.00 % below 99.00 % (900 of 1000 ok); failed checks 2 of 2');
    expect(d.numbers.failedChecks).toBe(2);
  });

  it('analysis - exactly at the success threshold passes; one failure more fails', () => {
    expect(analyze(win(totals(1000, 10)), spec, running(), after(30_000)).kind).toBe('promote-step');
    expect(analyze(win(totals(1000, 11)), spec, running(), after(30_000)).kind).toBe('fail-check');
  });

  it('analysis - a p99 above the limit is a failed check; both misses are reported together', () => {
    const slow = totals(1000, 0, 800);
    const d = analyze(win(slow), spec, running(), after(30_000));
    expect(d.kind).toBe('fail-check');
    expect(d.reason).toMatch(/^p99 \d+(\.\d+)? ms above 500 ms; failed checks 1 of 2$/);
    expect(d.numbers.p99Ms).toBeGreaterThan(500);
    const both = analyze(win(totals(1000, 200, 800)), spec, running(), after(30_000));
    expect(both.reason).toMatch(/^success rate 80.00 % below 99.00 % \(800 of 1000 ok\); p99 .* above 500 ms; failed checks 1 of 2$/);
  });

  it('analysis - p99 is read from the merged windows of all reporters, never from averaged percentiles', () => {
    // Two hosts serve the canary: one fast, one where half the calls take 900 ms.
    const fast = emptyHistogram();
    observe(fast, 10, 1000);
    const mixed = emptyHistogram();
    observe(mixed, 10, 500);
    observe(mixed, 900, 500);
    const canary = addWindows(emptyTotals(), [
      { requests: 1000, failures: 0, histogram: histogramToWire(fast) },
      { requests: 1000, failures: 0, histogram: histogramToWire(mixed) },
    ]);
    expect(canary.requests).toBe(2000);
    // The average of the two hosts' p99s is under the limit of 500 ms ...
    expect((quantile(fast, 0.99)! + quantile(mixed, 0.99)!) / 2).toBeLessThan(500);
    // ... but a quarter of the canary's calls took 900 ms: its p99 fails the check.
    const d = analyze(win(canary), spec, running(), after(30_000));
    expect(d.kind).toBe('fail-check');
    expect(d.numbers.p99Ms).toBeGreaterThan(750);
  });
});

describe('analysis: no data', () => {
  it('analysis - too little traffic waits up to the progress deadline, then rolls back with reason "no data"', () => {
    const state = running();
    expect(analyze(win(totals(12)), spec, state, after(599_999)).kind).toBe('wait');
    const d = analyze(win(totals(12)), spec, state, after(600_000));
    expect(d.kind).toBe('rollback');
    expect(d.reason.startsWith(NO_DATA)).toBe(true);
    expect(d.reason).toBe('no data: 12 canary requests, 100 needed, within the progress deadline of 600 s');
    expect(d.numbers).toEqual({ canaryRequests: 12, minRequests: 100, waitedMs: 600_000, progressDeadlineMs: 600_000 });
  });

  it('analysis - a canary that never starts serving rolls back with "no data" at the deadline', () => {
    const fresh = start(undefined, { actor: 'greeter', stable: '1.0.0', canary: '1.1.0', spec }, T0).state;
    expect(analyze(win(emptyTotals()), spec, fresh, after(10_000))).toMatchObject({ kind: 'wait', reason: 'waiting for the canary to serve' });
    const d = analyze(win(emptyTotals()), spec, fresh, after(600_000));
    expect(d.kind).toBe('rollback');
    expect(d.reason).toMatch(/^no data: the canary did not start serving/);
  });
});

describe('analysis: phases', () => {
  it('analysis - paused: a healthy window does not advance, a failing one still counts, no data never rolls back', () => {
    const paused = pause(running(), after(1000)).state!;
    expect(analyze(win(totals(1000)), spec, paused, after(30_000)).kind).toBe('wait');
    expect(analyze(win(totals(1000, 100)), spec, paused, after(30_000)).kind).toBe('fail-check');
    expect(analyze(win(totals(3)), spec, paused, after(3_600_000)).kind).toBe('wait');
  });

  it('analysis - a finished run or a pending full promotion is not judged', () => {
    for (const phase of ['Promoted', 'RolledBack', 'Aborted'] as const) {
      expect(analyze(win(totals(1000, 1000)), spec, { ...running(), phase }, after(30_000))).toMatchObject({ kind: 'wait', reason: `canary is ${phase}` });
    }
    expect(analyze(win(totals(1000, 1000)), spec, { ...running(), promoteFull: true }, after(30_000)).kind).toBe('wait');
  });
});

describe('analysis: status numbers', () => {
  it('analysis - summarize and actualWeight give the status window; no data gives no rates', () => {
    const s = summarize(totals(200, 2, 40));
    expect(s).toMatchObject({ requests: 200, failures: 2, successRate: 0.99 });
    expect(s.p50Ms).toBeGreaterThan(40 / 1.19);
    expect(s.p99Ms).toBeLessThan(40 * 1.19);
    expect(summarize(emptyTotals())).toEqual({ requests: 0, failures: 0 });
    expect(actualWeight(win(totals(100), totals(900)))).toBe(10);
    expect(actualWeight(win(emptyTotals(), emptyTotals()))).toBeUndefined();
  });

  it('analysis - bad wire windows are refused with TRELLIS_BAD_REQUEST and leave the totals as they were', () => {
    const good = { requests: 10, failures: 1, histogram: histogramToWire(totals(9).histogram) };
    const code = expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' });
    const bad = [
      { ...good, histogram: { schema: 9, offset: 0, counts: [], sumMs: 0 } },
      { ...good, histogram: { ...good.histogram, counts: [1, -1] } },
      { ...good, failures: 11 },
      { ...good, requests: -1 },
      { ...good, requests: 1.5 },
    ];
    for (const w of bad) {
      const into = addWindows(emptyTotals(), [good]);
      expect(() => addWindows(into, [w])).toThrow(code);
      expect(into.requests).toBe(10);
      expect(into.failures).toBe(1);
      expect(into.histogram).toEqual(totals(9).histogram);
    }
  });
});
