import { describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS, type CanarySpec } from '../apps/canary.ts';
import type { CanaryState } from '../wire/index.ts';
import { analyze, emptyTotals, type AnalysisWindow, type Decision } from './analysis.ts';
import { observe } from './histogram.ts';
import { HISTORY_LIMIT, abort, begin, currentStable, pause, promote, resume, start, tick, type CanaryTransition } from './machine.ts';
import { checkCanaryState } from './state.ts';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const S = 1000;
const spec: CanarySpec = { ...CANARY_DEFAULTS, steps: [10, 30, 50, 100] };
const base = { actor: 'greeter', stable: '1.0.0', canary: '1.1.0', spec };

function window(requests: number, failures = 0, ms = 20): AnalysisWindow {
  const canary = emptyTotals();
  canary.requests = requests;
  canary.failures = failures;
  observe(canary.histogram, ms, requests - failures);
  const stable = emptyTotals();
  stable.requests = 1000;
  observe(stable.histogram, 20, 1000);
  return { stable, canary };
}
const healthy = () => window(500);
const failing = () => window(1000, 100);

/** One controller tick: analyse the window, apply the decision. */
function drive(state: CanaryState, w: AnalysisWindow, now: number): CanaryTransition {
  return tick(state, analyze(w, state.spec, state, now), now);
}

/** A run at step 1 (10 %) since T0. */
function atStep1(s: CanarySpec = spec, extra: Partial<typeof base> & { app?: string } = {}) {
  const started = start(undefined, { ...base, spec: s, ...extra }, T0 - 10 * S).state;
  return begin(started, T0).state;
}

/** A failover: the state goes through KV (JSON) and is checked by the next leader. */
const failover = (state: CanaryState) => checkCanaryState(JSON.parse(JSON.stringify(state)));

describe('machine: start and begin', () => {
  it('machine - start holds all traffic on stable at step 0; begin enters step 1 once the canary serves', () => {
    const t = start(undefined, base, T0);
    expect(t.state).toMatchObject({ phase: 'Progressing', step: 0, weight: { set: 0 }, failedChecks: 0, failureLimit: 2, generation: 1, steps: [10, 30, 50, 100] });
    expect(t.weights).toEqual({ weights: { '1.0.0': 100 } });
    expect(t.events.map((e) => e.kind)).toEqual(['canary_started']);
    expect(t.state.history.map((h) => h.decision)).toEqual(['started']);
    const b = begin(t.state, T0 + S);
    expect(b.state).toMatchObject({ step: 1, weight: { set: 10 }, stepStartedAt: new Date(T0 + S).toISOString(), windowStartedAt: new Date(T0 + S).toISOString() });
    expect(b.weights).toEqual({ weights: { '1.0.0': 90, '1.1.0': 10 } });
    expect(b.events).toEqual([{ kind: 'canary_step', data: expect.objectContaining({ actor: 'greeter', step: 1, weight: 10, phase: 'Progressing', generation: 1 }) }]);
    // Level-triggered: calling it again does nothing.
    expect(begin(b.state, T0 + 2 * S).changed).toBe(false);
  });

  it('machine - a split carries the sticky key source and which version is the canary', () => {
    const state = atStep1({ ...spec, stickyHeader: 'x-user' });
    expect(promote(state, {}, T0 + S).weights).toEqual({ weights: { '1.0.0': 70, '1.1.0': 30 }, sticky: { header: 'x-user', canary: '1.1.0' } });
    expect(begin(start(undefined, { ...base, spec: { ...spec, stickyCookie: 'sid' } }, T0).state, T0).weights?.sticky).toEqual({ cookie: 'sid', canary: '1.1.0' });
  });

  it('machine - bad starts are refused with TRELLIS_BAD_REQUEST', () => {
    const code = expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' });
    expect(() => start(undefined, { ...base, stable: undefined }, T0)).toThrow(code);
    expect(() => start(undefined, { ...base, canary: '1.0.0' }, T0)).toThrow(/already the stable/);
    expect(() => start(undefined, { ...base, canary: 'latest' }, T0)).toThrow(code);
    expect(() => start(undefined, { ...base, actor: 'a.b' }, T0)).toThrow(code);
    expect(() => start(atStep1(), { ...base, actor: 'other' }, T0)).toThrow(code);
  });
});

describe('machine: analysis drives the run', () => {
  it('machine - a healthy canary goes 10 → 30 → 50 → 100 and is promoted; the old version is retired and the app moves', () => {
    let state = atStep1(spec, { app: 'shop' });
    const weights: number[] = [state.weight.set];
    let now = T0;
    let last: CanaryTransition | undefined;
    for (let i = 0; i < 4; i++) {
      now += spec.intervalMs;
      last = drive(state, healthy(), now);
      expect(last.changed).toBe(true);
      state = last.state;
      weights.push(state.weight.set);
    }
    expect(weights).toEqual([10, 30, 50, 100, 100]);
    expect(state.phase).toBe('Promoted');
    expect(currentStable(state)).toBe('1.1.0');
    expect(last!.weights).toEqual({ weights: { '1.1.0': 100 } });
    expect(last!.effects).toEqual([{ kind: 'retire-version', version: '1.0.0' }, { kind: 'set-app-version', app: 'shop', version: '1.1.0', from: '1.0.0' }]);
    expect(last!.events[0]).toMatchObject({ kind: 'canary_promoted', data: { app: 'shop', phase: 'Promoted', weight: 100 } });
    expect(state.history.map((h) => h.decision)).toEqual(['started', 'step', 'step', 'step', 'step', 'promoted']);
  });

  it('machine - too little data and an unfinished interval change nothing', () => {
    const state = atStep1();
    expect(drive(state, window(99), T0 + spec.intervalMs)).toMatchObject({ changed: false, events: [], effects: [] });
    expect(drive(state, healthy(), T0 + spec.intervalMs - 1).changed).toBe(false);
  });

  it('machine - a failed check holds the weight and counts; the limit rolls back at once with the numbers', () => {
    let state = atStep1();
    const first = drive(state, failing(), T0 + 30 * S);
    state = first.state;
    expect(state).toMatchObject({ phase: 'Progressing', step: 1, weight: { set: 10 }, failedChecks: 1 });
    expect(first.weights).toBeUndefined();
    expect(state.windowStartedAt).toBe(new Date(T0 + 30 * S).toISOString());
    expect(state.history.at(-1)).toMatchObject({ decision: 'failed-check', numbers: { failedChecks: 1, failureLimit: 2, successRate: 0.9 } });
    // The next check judges a fresh window: one interval later.
    expect(drive(state, failing(), T0 + 59 * S).changed).toBe(false);
    const second = drive(state, failing(), T0 + 60 * S);
    expect(second.state).toMatchObject({ phase: 'RolledBack', failedChecks: 2, weight: { set: 0 } });
    expect(second.weights).toEqual({ weights: { '1.0.0': 100 } });
    expect(second.effects).toEqual([{ kind: 'stop-version', version: '1.1.0', reason: 'success rate 90.00 % below 99.00 % (900 of 1000 ok); failed checks 2 of 2' }]);
    expect(second.events).toEqual([
      {
        kind: 'canary_rolled_back',
        data: expect.objectContaining({ reason: 'success rate 90.00 % below 99.00 % (900 of 1000 ok); failed checks 2 of 2', numbers: expect.objectContaining({ canaryRequests: 1000, canaryFailures: 100, failedChecks: 2, failureLimit: 2 }) }),
      },
    ]);
  });

  it('machine - failed checks add up across steps (Flagger): fail at 10 %, pass, fail at 30 % rolls back', () => {
    let state = drive(atStep1(), failing(), T0 + 30 * S).state;
    state = drive(state, healthy(), T0 + 60 * S).state;
    expect(state).toMatchObject({ step: 2, failedChecks: 1 });
    const t = drive(state, failing(), T0 + 90 * S);
    expect(t.state.phase).toBe('RolledBack');
  });

  it('machine - keepCanaryOnRollback keeps the canary instances after a rollback', () => {
    const state = atStep1({ ...spec, failureLimit: 1, keepCanaryOnRollback: true });
    const t = drive(state, failing(), T0 + 30 * S);
    expect(t.state.phase).toBe('RolledBack');
    expect(t.weights).toEqual({ weights: { '1.0.0': 100 } });
    expect(t.effects).toEqual([]);
  });

  it('machine - no data past the progress deadline rolls back with reason "no data"', () => {
    const state = atStep1();
    expect(drive(state, window(3), T0 + spec.progressDeadlineMs - 1).changed).toBe(false);
    const t = drive(state, window(3), T0 + spec.progressDeadlineMs);
    expect(t.state.phase).toBe('RolledBack');
    expect(t.events[0]!.data.reason).toMatch(/^no data: 3 canary requests, 100 needed/);
    expect(t.state.history.at(-1)).toMatchObject({ decision: 'rolled-back', numbers: { canaryRequests: 3, minRequests: 100 } });
  });

  it('machine - stale decisions: another generation is ignored; a forward decision for a step since left is ignored', () => {
    const gen1 = atStep1();
    const stalePromote = analyze(healthy(), spec, gen1, T0 + 30 * S);
    const moved = promote(gen1, {}, T0 + 10 * S).state!;
    expect(tick(moved, stalePromote, T0 + 30 * S).changed).toBe(false);
    const gen2 = begin(start(gen1, { ...base, canary: '1.2.0' }, T0 + 5 * S).state, T0 + 6 * S).state;
    const staleRollback: Decision = { ...analyze(failing(), spec, { ...gen1, failedChecks: 1 }, T0 + 30 * S) };
    expect(staleRollback.kind).toBe('rollback');
    expect(tick(gen2, staleRollback, T0 + 30 * S).changed).toBe(false);
  });

  it('machine - one failing window counts once: a decision re-applied on a lagging copy (CAS retry) does not reach the limit', () => {
    const state = atStep1();
    const d1 = analyze(failing(), spec, state, T0 + 30 * S);
    expect(d1.windowStartedAt).toBe(state.windowStartedAt);
    const once = tick(state, d1, T0 + 30 * S).state;
    expect(once).toMatchObject({ phase: 'Progressing', failedChecks: 1 });
    // The leader judged the same window again from its stale copy; the retry lands on `once`.
    const again = analyze(failing(), spec, state, T0 + 30 * S + 250);
    expect(tick(once, again, T0 + 31 * S).changed).toBe(false);
    // The next window failing is a second check: the limit (2) rolls back.
    const next = analyze(failing(), spec, once, T0 + 60 * S);
    const twice = tick(once, next, T0 + 60 * S);
    expect(twice.state).toMatchObject({ phase: 'RolledBack', failedChecks: 2 });
    expect(twice.events[0]!.data.reason).toMatch(/failed checks 2 of 2$/);
    // A rollback judged on a window already counted still rolls back, without counting it again.
    const limit1 = atStep1({ ...spec, failureLimit: 3 });
    const counted = tick(limit1, analyze(failing(), limit1.spec, limit1, T0 + 30 * S), T0 + 30 * S).state;
    const lagging = analyze(failing(), limit1.spec, { ...limit1, failedChecks: 2 }, T0 + 30 * S);
    expect(lagging.kind).toBe('rollback');
    expect(tick(counted, lagging, T0 + 31 * S).state).toMatchObject({ phase: 'RolledBack', failedChecks: 1 });
    // A healthy window judged before a resume (fresh window) does not move the step afterwards.
    const healthyBefore = analyze(healthy(), spec, state, T0 + 30 * S);
    const resumed = resume(pause(state, T0 + 20 * S).state, T0 + 25 * S).state!;
    expect(tick(resumed, healthyBefore, T0 + 30 * S).changed).toBe(false);
  });

  it('machine - history stays bounded in a long run', () => {
    let state = atStep1({ ...spec, failureLimit: 1000 });
    for (let i = 1; i <= HISTORY_LIMIT + 20; i++) state = drive(state, failing(), T0 + i * 30 * S).state;
    expect(state.failedChecks).toBe(HISTORY_LIMIT + 20);
    expect(state.history).toHaveLength(HISTORY_LIMIT);
    expect(state.history.at(-1)!.decision).toBe('failed-check');
  });
});

describe('machine: manual control', () => {
  it('machine - promote advances one step now; at the last step it promotes; before the canary serves it is refused', () => {
    let t = promote(atStep1(), {}, T0 + S);
    expect(t.state).toMatchObject({ step: 2, weight: { set: 30 } });
    expect(t.events[0]).toMatchObject({ kind: 'canary_step', data: { reason: 'step 2: 30 % to 1.1.0; promoted by hand' } });
    t = promote(t.state, {}, T0 + 2 * S);
    t = promote(t.state, {}, T0 + 3 * S);
    expect(t.state).toMatchObject({ step: 4, weight: { set: 100 } });
    t = promote(t.state, {}, T0 + 4 * S);
    expect(t.state!.phase).toBe('Promoted');
    // Promoting a promoted canary is no error and does nothing.
    const again = promote(t.state, {}, T0 + 5 * S);
    expect(again.changed).toBe(false);
    expect(again.refused).toBeUndefined();
    const notServing = promote(start(undefined, base, T0).state, {}, T0 + S);
    expect(notServing).toMatchObject({ changed: false, refused: { code: 'TRELLIS_CONFLICT' } });
    expect(promote(undefined, {}, T0, 'greeter')).toMatchObject({ changed: false, refused: { code: 'TRELLIS_NOT_FOUND', reason: 'no canary is running for greeter' } });
  });

  it('machine - promote --full skips the remaining steps and analysis', () => {
    const t = promote(atStep1(spec, { app: 'shop' }), { full: true }, T0 + S);
    expect(t.state).toMatchObject({ phase: 'Promoted', weight: { set: 100 } });
    expect(t.weights).toEqual({ weights: { '1.1.0': 100 } });
    expect(t.effects.map((e) => e.kind)).toEqual(['retire-version', 'set-app-version']);
  });

  it('machine - promote during a pause leaves the pause and advances (Argo Rollouts promote)', () => {
    const paused = pause(atStep1(), T0 + S).state!;
    const t = promote(paused, {}, T0 + 2 * S);
    expect(t.state).toMatchObject({ phase: 'Progressing', step: 2 });
    expect(t.state!.pausedAt).toBeUndefined();
  });
});

describe('machine: the races of the issue', () => {
  it('race - abort during a full promote (Argo Rollouts #4461): abort wins, stable gets 100 %, the canary stops', () => {
    // The canary does not serve yet, so the full promotion waits for it.
    const waiting = promote(start(undefined, base, T0).state, { full: true }, T0 + S);
    expect(waiting.state).toMatchObject({ phase: 'Progressing', step: 0, promoteFull: true });
    expect(waiting.weights).toBeUndefined();
    expect(pause(waiting.state, T0 + 2 * S).refused?.code).toBe('TRELLIS_CONFLICT');
    const aborted = abort(waiting.state, T0 + 2 * S);
    expect(aborted.state).toMatchObject({ phase: 'Aborted', weight: { set: 0 } });
    expect(aborted.state!.promoteFull).toBeUndefined();
    expect(aborted.weights).toEqual({ weights: { '1.0.0': 100 } });
    expect(aborted.effects).toEqual([{ kind: 'stop-version', version: '1.1.0', reason: expect.stringContaining('cancelling a pending full promotion') }]);
    expect(aborted.events.map((e) => e.kind)).toEqual(['canary_aborted']);
    // The canary starting to serve afterwards promotes nothing.
    expect(begin(aborted.state!, T0 + 3 * S).changed).toBe(false);
    // Without the abort, it would have been promoted as soon as it served.
    expect(begin(waiting.state!, T0 + 3 * S).state.phase).toBe('Promoted');
  });

  it('race - promote during a rollback: the rollback stands, promote is refused and says why', () => {
    const rolledBack = drive(atStep1({ ...spec, failureLimit: 1 }), failing(), T0 + 30 * S).state;
    expect(rolledBack.phase).toBe('RolledBack');
    for (const full of [false, true]) {
      const t = promote(rolledBack, { full }, T0 + 31 * S);
      expect(t.changed).toBe(false);
      expect(t.state).toBe(rolledBack);
      expect(t.weights).toBeUndefined();
      expect(t.effects).toEqual([]);
      expect(t.refused?.code).toBe('TRELLIS_CONFLICT');
      expect(t.refused?.reason).toMatch(/was RolledBack \(success rate 90.00 % below/);
    }
    // The other order: a promote lands first, then the rollback decided for the step before.
    const state = atStep1({ ...spec, failureLimit: 1 });
    const decided = analyze(failing(), spec, state, T0 + 30 * S);
    const promoted = promote(state, {}, T0 + 30 * S).state!;
    expect(tick(promoted, decided, T0 + 30 * S).state.phase).toBe('RolledBack');
  });

  it('race - a new start during a run restarts the analysis for the new version (Flagger #30)', () => {
    let state = drive(atStep1(), failing(), T0 + 30 * S).state;
    state = drive(state, healthy(), T0 + 60 * S).state;
    expect(state).toMatchObject({ step: 2, failedChecks: 1, generation: 1 });
    const oldDecision = analyze(healthy(), spec, state, T0 + 90 * S);
    const t = start(state, { ...base, stable: undefined, canary: '1.2.0' }, T0 + 70 * S);
    expect(t.state).toMatchObject({ stable: '1.0.0', canary: '1.2.0', phase: 'Progressing', step: 0, weight: { set: 0 }, failedChecks: 0, generation: 2 });
    expect(t.weights).toEqual({ weights: { '1.0.0': 100 } });
    expect(t.effects).toEqual([{ kind: 'stop-version', version: '1.1.0', reason: 'replaced by 1.2.0' }]);
    expect(t.events[0]).toMatchObject({ kind: 'canary_started', data: { canary: '1.2.0', generation: 2, reason: expect.stringMatching(/^restarted: 1.2.0 replaces the run of 1.1.0 at step 2 with 1 failed checks/) } });
    // What the old run had earned does not carry over: its decision is ignored, and the new
    // version must pass every step itself.
    expect(tick(t.state, oldDecision, T0 + 90 * S).changed).toBe(false);
    const fresh = begin(t.state, T0 + 71 * S).state;
    expect(fresh).toMatchObject({ step: 1, weight: { set: 10 } });
    expect(t.state.history.map((h) => h.decision)).toEqual(['restarted']);
    expect(analyze(window(99), spec, fresh, T0 + 71 * S + spec.intervalMs).kind).toBe('wait');
  });

  it('race - starting the same version again changes nothing; new settings restart; a new artifact under a tried version is refused', () => {
    const state = atStep1();
    expect(start(state, base, T0 + S)).toMatchObject({ changed: false, state });
    // A run of a hand-run version (no digest known) restarted with --source.
    const t = start(state, { ...base, canaryDigest: 'sha256:feed' }, T0 + S);
    expect(t.state).toMatchObject({ generation: 2, step: 0, canaryDigest: 'sha256:feed' });
    // Same version: its instances are replaced by the controller, not stopped.
    expect(t.effects).toEqual([]);
    expect(start(state, { ...base, spec: { ...spec, successRate: 0.95 } }, T0 + S).state.generation).toBe(2);
    // A version tried with one artifact is refused with another (running or ended): the old
    // instances would be counted as the new one's. It takes a new version.
    for (const tried of [t.state, abort(begin(t.state, T0 + 2 * S).state, T0 + 3 * S).state!]) {
      const again = start(tried, { ...base, canaryDigest: 'sha256:beef' }, T0 + 4 * S);
      expect(again.changed).toBe(false);
      expect(again.refused?.code).toBe('TRELLIS_CONFLICT');
      expect(again.refused?.reason).toContain('needs a new version');
      expect(start(tried, { ...base, canary: '1.1.1', canaryDigest: 'sha256:beef' }, T0 + 4 * S).changed).toBe(true);
    }
  });

  it('race - a start after a finished run compares with what that run left serving', () => {
    const promoted = promote(atStep1(), { full: true }, T0 + S).state!;
    const next = start(promoted, { ...base, stable: undefined, canary: '1.2.0' }, T0 + 2 * S);
    expect(next.state).toMatchObject({ stable: '1.1.0', canary: '1.2.0', generation: 2 });
    expect(next.effects).toEqual([]);
    const rolledBack = abort(atStep1(), T0 + S).state!;
    expect(start(rolledBack, { ...base, stable: undefined, canary: '1.2.0' }, T0 + 2 * S).state.stable).toBe('1.0.0');
  });

  it('race - abort with no canary running (Argo Rollouts #1292) does not touch stable', () => {
    const none = abort(undefined, T0, 'greeter');
    expect(none).toEqual({ state: undefined, changed: false, events: [], effects: [], refused: { code: 'TRELLIS_NOT_FOUND', reason: 'no canary is running for greeter' } });
    for (const finished of [promote(atStep1(), { full: true }, T0).state!, abort(atStep1(), T0).state!, drive(atStep1({ ...spec, failureLimit: 1 }), failing(), T0 + 30 * S).state]) {
      const t = abort(finished, T0 + S);
      expect(t).toMatchObject({ changed: false, events: [], effects: [], refused: { code: 'TRELLIS_NOT_FOUND' } });
      expect(t.weights).toBeUndefined();
      expect(t.state).toBe(finished);
    }
  });

  it('race - pause, leader failover, resume: the same step and failed checks, a fresh window', () => {
    let state = drive(atStep1(), failing(), T0 + 30 * S).state;
    state = drive(state, healthy(), T0 + 60 * S).state;
    expect(state).toMatchObject({ step: 2, weight: { set: 30 }, failedChecks: 1 });
    const paused = pause(state, T0 + 61 * S);
    expect(paused.state).toMatchObject({ phase: 'Paused', step: 2 });
    expect(paused.weights).toBeUndefined();
    expect(paused.events.map((e) => e.kind)).toEqual(['canary_paused']);
    expect(pause(paused.state, T0 + 62 * S).changed).toBe(false);
    // The old leader dies; the next one reads the document from KV.
    const read = failover(paused.state!);
    expect(read).toEqual(paused.state);
    // Paused for an hour with no traffic: held, not rolled back for lack of data.
    expect(drive(read, window(0), T0 + 3600 * S).changed).toBe(false);
    const resumed = resume(read, T0 + 3601 * S);
    expect(resumed.state).toMatchObject({ phase: 'Progressing', step: 2, weight: { set: 30 }, failedChecks: 1, windowStartedAt: new Date(T0 + 3601 * S).toISOString() });
    expect(resumed.state!.pausedAt).toBeUndefined();
    expect(resumed.weights).toEqual({ weights: { '1.0.0': 70, '1.1.0': 30 } });
    expect(resumed.events.map((e) => e.kind)).toEqual(['canary_step']);
    expect(resume(resumed.state, T0 + 3602 * S).changed).toBe(false);
    // It goes on from step 2 with the next interval of fresh data; the deadline counts from the resume.
    expect(drive(resumed.state!, healthy(), T0 + 3601 * S + spec.intervalMs - 1).changed).toBe(false);
    expect(drive(resumed.state!, healthy(), T0 + 3601 * S + spec.intervalMs).state).toMatchObject({ step: 3, weight: { set: 50 } });
    // And the one failed check from before the pause still counts.
    expect(drive(resumed.state!, failing(), T0 + 3601 * S + spec.intervalMs).state.phase).toBe('RolledBack');
  });

  it('race - pause and resume of a finished run or of nothing are refused', () => {
    const done = abort(atStep1(), T0).state!;
    expect(pause(done, T0).refused?.code).toBe('TRELLIS_CONFLICT');
    expect(resume(done, T0).refused?.code).toBe('TRELLIS_CONFLICT');
    expect(pause(undefined, T0, 'greeter').refused?.code).toBe('TRELLIS_NOT_FOUND');
    expect(resume(undefined, T0, 'greeter').refused?.code).toBe('TRELLIS_NOT_FOUND');
  });
});
