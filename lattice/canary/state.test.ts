import { describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS } from '../apps/canary.ts';
import { emptyTotals } from './analysis.ts';
import { observe } from './histogram.ts';
import { begin, pause, start } from './machine.ts';
import { checkCanaryState, statusView } from './state.ts';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const state = () => begin(start(undefined, { actor: 'greeter', app: 'shop', stable: '1.0.0', canary: '1.1.0', spec: { ...CANARY_DEFAULTS, steps: [10, 30, 50, 100], stickyHeader: 'x-user' } }, T0).state, T0 + 1000).state;

describe('canary state document', () => {
  it('state - a state read back from JSON checks out unchanged, in every phase', () => {
    for (const s of [state(), pause(state(), T0 + 2000).state!, { ...state(), phase: 'RolledBack' as const, endedAt: new Date(T0).toISOString() }]) {
      const read = checkCanaryState(JSON.parse(JSON.stringify(s)));
      expect(read).toEqual(s);
    }
  });

  it('state - a corrupt or foreign document is refused with TRELLIS_BAD_REQUEST naming the field', () => {
    const good = JSON.parse(JSON.stringify(state()));
    const cases: [Record<string, unknown> | null, RegExp][] = [
      [null, /document is not an object/],
      [{ ...good, actor: '' }, /actor must be a non-empty string/],
      [{ ...good, phase: 'Promoting' }, /phase must be one of Progressing, Paused, Promoted, RolledBack, Aborted/],
      [{ ...good, steps: [10, 5, 100] }, /steps must be ascending/],
      [{ ...good, steps: [10, 50] }, /steps must be ascending percentages ending at 100/],
      [{ ...good, step: 5 }, /step must be at most 4/],
      [{ ...good, step: -1 }, /step must be an integer >= 0/],
      [{ ...good, weight: { set: 101 } }, /weight.set must be at most 100/],
      [{ ...good, failedChecks: 1.5 }, /failedChecks must be an integer/],
      [{ ...good, generation: 0 }, /generation must be an integer >= 1/],
      [{ ...good, startedAt: 'yesterday' }, /startedAt must be an ISO time/],
      [{ ...good, spec: { ...good.spec, successRate: 2 } }, /spec.successRate must be from 0 to 1/],
      [{ ...good, spec: { ...good.spec, minRequests: 0 } }, /spec.minRequests must be a number above 0/],
      [{ ...good, history: [{ at: 'x', decision: 'exploded', reason: '', step: 0, weight: 0 }] }, /history\[0\] must be/],
      [{ ...good, promoteFull: 'yes' }, /promoteFull must be true or false/],
    ];
    for (const [value, message] of cases) {
      expect(() => checkCanaryState(value)).toThrow(message);
      expect(() => checkCanaryState(value)).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    }
  });

  it('state - the status view has the fields of `canary status --json`', () => {
    const canary = emptyTotals();
    canary.requests = 100;
    canary.failures = 1;
    observe(canary.histogram, 30, 99);
    const stable = emptyTotals();
    stable.requests = 900;
    observe(stable.histogram, 20, 900);
    const view = statusView(state(), { stable, canary });
    expect(view).toMatchObject({
      actor: 'greeter',
      app: 'shop',
      stable: '1.0.0',
      canary: '1.1.0',
      phase: 'Progressing',
      step: 1,
      steps: [10, 30, 50, 100],
      weight: { set: 10, actual: 10 },
      failedChecks: 0,
      failureLimit: 2,
      window: { stable: { requests: 900, successRate: 1 }, canary: { requests: 100, successRate: 0.99 } },
    });
    expect(view.window.canary.p99Ms).toBeGreaterThan(25);
    expect(view.history.map((h) => [h.decision, h.reason])).toEqual([
      ['started', 'started: 1.1.0 against stable 1.0.0'],
      ['step', 'step 1: 10 % to 1.1.0'],
    ]);
    expect(Object.keys(view.history[0]!).sort()).toEqual(['at', 'decision', 'reason']);
    // Without a window: counts of zero, no rates, no actual weight.
    const bare = statusView(state());
    // No data: the keys are there all the same, as null.
    expect(bare.weight).toEqual({ set: 10, actual: null });
    expect(bare.window.canary).toEqual({ requests: 0, failures: 0, successRate: null, p50Ms: null, p99Ms: null });
    expect(JSON.parse(JSON.stringify(bare)).window.stable).toHaveProperty('p99Ms', null);
  });
});
