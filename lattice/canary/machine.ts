/**
 * The canary state machine: pure transitions over the persisted CanaryState. Each returns the
 * new state plus what the controller must do about it: the weights to write, the events to
 * emit, the instances to stop or retire. The controller persists the state in KV with
 * compare-and-set, so after a leader failover the next leader reads the same state and goes on
 * from the same step; time always comes in as `now` (ms since the epoch).
 *
 * The races that broke Flagger and Argo Rollouts, and what happens here:
 * - abort during a full promote (Argo Rollouts #4461: the abort was ignored while a full
 *   promotion waited for an unhealthy canary): a pending full promotion is still an active run,
 *   and abort wins: stable gets 100 % and the canary stops.
 * - promote during a rollback: a rolled-back (or aborted) run is over; promote is refused and
 *   says why. Rolling forward a version the analysis rejected takes a new `start`.
 * - a new start while a run is active (Flagger #30: the analysis resumed with the new revision
 *   and could promote it unvalidated): a new generation begins at step 0 with failed checks 0
 *   and all traffic on stable, and the replaced canary stops; decisions of the old generation
 *   are ignored. Starting the same version, artifact and settings again changes nothing, so a
 *   controller may repeat a start after failover. The same version from another artifact is
 *   refused (TRELLIS_CONFLICT): instances are told apart by version only.
 * - abort with nothing running (Argo Rollouts #1292 scaled the stable version to 0): refused
 *   with no weights and no effects; stable is never touched.
 * - pause, failover, resume: all of it lives in the state; resume continues the same step with
 *   the same failed checks and a fresh window.
 */
import type { CanarySpec } from '../apps/index.ts';
import { TrellisError, type ErrorCode } from '../errors/index.ts';
import { token, versionToken } from '../subjects/index.ts';
import type { AppActorSpec, CanaryEventKind, CanaryEventPayload, CanaryHistoryDecision, CanaryHistoryEntry, CanaryState } from '../wire/index.ts';
import type { Decision } from './analysis.ts';

/** History entries kept in the document: enough to explain a run, bounded for KV. */
export const HISTORY_LIMIT = 100;

/** The weights document to write: version → percent, summing to 100. */
export interface WeightsIntent {
  weights: Record<string, number>;
  /** While traffic is split: where the sticky key comes from, and which version is the canary. */
  sticky?: { header?: string; cookie?: string; canary: string };
}

export type CanaryEffect =
  /** Stop this version's instances (a rolled-back, aborted or replaced canary). */
  | { kind: 'stop-version'; version: string; reason: string }
  /** The old stable after promotion: drain it with no request lost, then stop it. */
  | { kind: 'retire-version'; version: string }
  /**
   * Move the app's desired state from `from` to this version. The effect carries what it needs
   * (the controller adds the promoted actor spec): a newer run may replace the document before
   * it is done, and must not lend it its own canary.
   */
  | { kind: 'set-app-version'; app: string; version: string; from?: string; spec?: AppActorSpec };

export interface CanaryEvent {
  kind: CanaryEventKind;
  data: CanaryEventPayload;
}

export interface CanaryTransition<S extends CanaryState | undefined = CanaryState> {
  state: S;
  /** False: nothing to persist or do. */
  changed: boolean;
  weights?: WeightsIntent;
  events: CanaryEvent[];
  effects: CanaryEffect[];
  /** A command that cannot apply in this state: the code and reason to answer the caller. */
  refused?: { code: ErrorCode; reason: string };
}

/** A run is active while Progressing or Paused (a pending full promotion included). */
export function isActive(state: CanaryState | undefined): boolean {
  return state !== undefined && (state.phase === 'Progressing' || state.phase === 'Paused');
}

/** The version serving as stable: the canary once promoted. */
export function currentStable(state: CanaryState): string {
  return state.phase === 'Promoted' ? state.canary : state.stable;
}

export interface StartInput {
  actor: string;
  app?: string;
  /** Needed when there is no previous run; otherwise taken from it (an active run's stable, or what a finished run left serving). */
  stable?: string;
  canary: string;
  canaryDigest?: string;
  spec: CanarySpec;
}

const iso = (now: number) => new Date(now).toISOString();

function unchanged<S extends CanaryState | undefined>(state: S, refused?: { code: ErrorCode; reason: string }): CanaryTransition<S> {
  return { state, changed: false, events: [], effects: [], ...(refused ? { refused } : {}) };
}

function record(state: CanaryState, now: number, decision: CanaryHistoryDecision, reason: string, numbers?: Record<string, number>): CanaryState {
  const entry: CanaryHistoryEntry = { at: iso(now), decision, reason, step: state.step, weight: state.weight.set, ...(numbers && Object.keys(numbers).length > 0 ? { numbers } : {}) };
  return { ...state, history: [...state.history, entry].slice(-HISTORY_LIMIT) };
}

function event(state: CanaryState, kind: CanaryEventKind, reason: string, numbers?: Record<string, number>): CanaryEvent {
  const data: CanaryEventPayload = {
    actor: state.actor,
    ...(state.app ? { app: state.app } : {}),
    stable: state.stable,
    canary: state.canary,
    generation: state.generation,
    phase: state.phase,
    step: state.step,
    weight: state.weight.set,
    failedChecks: state.failedChecks,
    reason,
    ...(numbers && Object.keys(numbers).length > 0 ? { numbers } : {}),
  };
  return { kind, data };
}

const allStable = (state: CanaryState): WeightsIntent => ({ weights: { [state.stable]: 100 } });

function split(state: CanaryState): WeightsIntent {
  const w = state.weight.set;
  const out: WeightsIntent = { weights: { [state.stable]: 100 - w, [state.canary]: w } };
  const { stickyHeader: header, stickyCookie: cookie } = state.spec;
  if (header || cookie) out.sticky = { ...(header ? { header } : {}), ...(cookie ? { cookie } : {}), canary: state.canary };
  return out;
}

/** Stable takes everything back; the canary stops unless the run keeps it for inspection. */
function endWithStable(state: CanaryState, now: number, phase: 'RolledBack' | 'Aborted', reason: string, numbers?: Record<string, number>): CanaryTransition {
  const { pausedAt: _p, promoteFull: _f, ...rest } = state;
  let next: CanaryState = { ...rest, phase, weight: { set: 0 }, endedAt: iso(now) };
  next = record(next, now, phase === 'RolledBack' ? 'rolled-back' : 'aborted', reason, numbers);
  const effects: CanaryEffect[] = state.spec.keepCanaryOnRollback ? [] : [{ kind: 'stop-version', version: state.canary, reason }];
  return { state: next, changed: true, weights: allStable(next), events: [event(next, phase === 'RolledBack' ? 'canary_rolled_back' : 'canary_aborted', reason, numbers)], effects };
}

function promoteNow(state: CanaryState, now: number, reason: string, numbers?: Record<string, number>): CanaryTransition {
  const { pausedAt: _p, promoteFull: _f, ...rest } = state;
  let next: CanaryState = { ...rest, phase: 'Promoted', weight: { set: 100 }, endedAt: iso(now) };
  next = record(next, now, 'promoted', reason, numbers);
  const effects: CanaryEffect[] = [{ kind: 'retire-version', version: state.stable }];
  if (state.app) effects.push({ kind: 'set-app-version', app: state.app, version: state.canary, from: state.stable });
  return { state: next, changed: true, weights: { weights: { [state.canary]: 100 } }, events: [event(next, 'canary_promoted', reason, numbers)], effects };
}

/** Enter step `step` (1-based): its weight, a fresh window and deadline. */
function enterStep(state: CanaryState, now: number, step: number, reason: string, numbers?: Record<string, number>): CanaryTransition {
  const { pausedAt: _p, ...rest } = state;
  let next: CanaryState = { ...rest, phase: 'Progressing', step, weight: { set: state.steps[step - 1]! }, stepStartedAt: iso(now), windowStartedAt: iso(now) };
  next = record(next, now, 'step', reason, numbers);
  return { state: next, changed: true, weights: split(next), events: [event(next, 'canary_step', reason, numbers)], effects: [] };
}

function sameSpec(a: CanarySpec, b: CanarySpec): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof CanarySpec>;
  return [...keys].every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));
}

/**
 * Start a canary of `input.canary`, or restart the analysis when another run is active (see
 * the races above). The run begins at step 0 with all traffic on stable: call `begin` once the
 * canary's instances serve.
 */
export function start(previous: CanaryState | undefined, input: StartInput, now: number): CanaryTransition {
  token(input.actor, 'actor name');
  versionToken(input.canary);
  if (previous && previous.actor !== input.actor) throw new TrellisError('TRELLIS_BAD_REQUEST', `canary state of ${previous.actor} given for ${input.actor}`);
  const active = previous !== undefined && isActive(previous);
  const stable = active ? previous!.stable : previous ? currentStable(previous) : input.stable;
  if (stable === undefined) throw new TrellisError('TRELLIS_BAD_REQUEST', `no stable version given for ${input.actor}: a canary needs a version to compare with`);
  versionToken(stable);
  if (stable === input.canary) throw new TrellisError('TRELLIS_BAD_REQUEST', `${input.actor} ${input.canary} is already the stable version`);
  // Instances are told apart by version: a new artifact under a version already tried would be
  // counted as the old one's (and could be promoted without ever running). A new build takes a new version.
  if (previous && previous.canary === input.canary && previous.canaryDigest && input.canaryDigest && previous.canaryDigest !== input.canaryDigest) {
    return unchanged(previous, { code: 'TRELLIS_CONFLICT', reason: `${input.actor} ${input.canary} was tried with ${previous.canaryDigest}; ${input.canaryDigest} needs a new version (a version names one artifact)` });
  }
  if (active && previous!.canary === input.canary && previous!.canaryDigest === input.canaryDigest && previous!.app === input.app && sameSpec(previous!.spec, input.spec)) {
    return unchanged(previous!);
  }
  const at = iso(now);
  let next: CanaryState = {
    actor: input.actor,
    ...(input.app ? { app: input.app } : {}),
    stable,
    canary: input.canary,
    ...(input.canaryDigest ? { canaryDigest: input.canaryDigest } : {}),
    phase: 'Progressing',
    step: 0,
    steps: [...input.spec.steps],
    weight: { set: 0 },
    failedChecks: 0,
    failureLimit: input.spec.failureLimit,
    spec: { ...input.spec, steps: [...input.spec.steps] },
    generation: (previous?.generation ?? 0) + 1,
    startedAt: at,
    stepStartedAt: at,
    windowStartedAt: at,
    // Each run tells its own story; the one it replaced is named in the first entry and event.
    history: [],
  };
  const replaced = active ? previous : undefined;
  const reason = replaced
    ? `restarted: ${input.canary}${input.canaryDigest ? ` (${input.canaryDigest})` : ''} replaces the run of ${replaced.canary} at step ${replaced.step} with ${replaced.failedChecks} failed checks`
    : `started: ${input.canary} against stable ${stable}`;
  next = record(next, now, replaced ? 'restarted' : 'started', reason);
  const effects: CanaryEffect[] = replaced && replaced.canary !== input.canary ? [{ kind: 'stop-version', version: replaced.canary, reason: `replaced by ${input.canary}` }] : [];
  return { state: next, changed: true, weights: allStable(next), events: [event(next, 'canary_started', reason)], effects };
}

/**
 * The canary's instances serve: enter the first step (or finish a pending full promotion).
 * Level-triggered: the controller may call it on every tick while step is 0; it acts once.
 */
export function begin(state: CanaryState, now: number): CanaryTransition {
  if (state.phase !== 'Progressing' || state.step !== 0) return unchanged(state);
  if (state.promoteFull) return promoteNow(state, now, 'promoted by hand (--full) once the canary served');
  return enterStep(state, now, 1, `step 1: ${state.steps[0]} % to ${state.canary}`);
}

/** Apply an analysis decision. Decisions of another generation, or for a step since left, are ignored where they would move forward. */
export function tick(state: CanaryState, decision: Decision, now: number): CanaryTransition {
  if (!isActive(state) || decision.generation !== state.generation) return unchanged(state);
  // Judged on a window the state has since left: it must not move a step (a resume or a step by
  // hand began a fresh window), and must not count twice when that window's failed check is in
  // already (a writer's lagging copy of the document judged it again: a failed check recorded
  // after the window began). A failure not yet counted stays evidence (promote during a rollback).
  const staleWindow = decision.windowStartedAt !== undefined && decision.windowStartedAt !== state.windowStartedAt;
  const counted = staleWindow && state.history.some((h) => h.decision === 'failed-check' && Date.parse(h.at) > Date.parse(decision.windowStartedAt!));
  switch (decision.kind) {
    case 'wait':
      return unchanged(state);
    case 'rollback':
      // Evidence against this canary stays evidence after a step or a pause: it still rolls back
      // (without counting its failed check again).
      return endWithStable(decision.failedCheck && !counted ? { ...state, failedChecks: state.failedChecks + 1 } : state, now, 'RolledBack', decision.reason, decision.numbers);
    case 'fail-check': {
      if (counted) return unchanged(state);
      const failedChecks = state.failedChecks + 1;
      const numbers = { ...decision.numbers, failedChecks, failureLimit: state.failureLimit };
      // Counted against the state as it is now: two checks judged at once still reach the limit.
      if (failedChecks >= state.failureLimit) {
        const reason = decision.reason.replace(/; failed checks \d+ of \d+$/, '') + `; failed checks ${failedChecks} of ${state.failureLimit}`;
        return endWithStable({ ...state, failedChecks }, now, 'RolledBack', reason, numbers);
      }
      let next: CanaryState = { ...state, failedChecks, windowStartedAt: iso(now), lastDataAt: iso(now) };
      next = record(next, now, 'failed-check', decision.reason, numbers);
      return { state: next, changed: true, events: [], effects: [] };
    }
    case 'promote-step':
    case 'promoted': {
      if (state.phase !== 'Progressing' || state.promoteFull || decision.step !== state.step || state.step === 0 || staleWindow) return unchanged(state);
      const withData = { ...state, lastDataAt: iso(now) };
      if (state.step >= state.steps.length) return promoteNow(withData, now, decision.reason, decision.numbers);
      return enterStep(withData, now, state.step + 1, `step ${state.step + 1}: ${state.steps[state.step]} % to ${state.canary}; ${decision.reason}`, decision.numbers);
    }
  }
}

const noCanary = (actor: string | undefined) => ({ code: 'TRELLIS_NOT_FOUND' as const, reason: `no canary is running${actor ? ` for ${actor}` : ''}` });

function over(state: CanaryState, what: string) {
  const last = [...state.history].reverse().find((h) => h.decision === 'rolled-back' || h.decision === 'aborted' || h.decision === 'promoted');
  return { code: 'TRELLIS_CONFLICT' as const, reason: `cannot ${what}: the canary of ${state.actor} ${state.canary} was ${state.phase}${last ? ` (${last.reason})` : ''}; start a new canary to try again` };
}

/**
 * `canary promote`: advance one step now (and leave a pause, as Argo Rollouts' promote does);
 * `--full`: skip the remaining steps and analysis. A full promote before the canary serves is
 * remembered and completes in `begin`; until then abort still wins.
 */
export function promote(state: CanaryState | undefined, opts: { full?: boolean }, now: number, actor?: string): CanaryTransition<CanaryState | undefined> {
  if (!state) return unchanged(state, noCanary(actor));
  if (state.phase === 'Promoted') return unchanged(state);
  if (!isActive(state)) return unchanged(state, over(state, 'promote'));
  if (opts.full) {
    if (state.step > 0) return promoteNow(state, now, 'promoted by hand (--full)');
    if (state.promoteFull) return unchanged(state);
    const { pausedAt: _p, ...rest } = state;
    const next = record({ ...rest, phase: 'Progressing', promoteFull: true }, now, 'promote-full-requested', `full promotion requested: ${state.canary} takes all traffic once it serves`);
    return { state: next, changed: true, events: [], effects: [] };
  }
  if (state.step === 0) return unchanged(state, { code: 'TRELLIS_CONFLICT', reason: `cannot promote ${state.actor} ${state.canary} yet: it does not serve; wait, or use --full` });
  if (state.step >= state.steps.length) return promoteNow(state, now, 'promoted by hand at the last step');
  return enterStep(state, now, state.step + 1, `step ${state.step + 1}: ${state.steps[state.step]} % to ${state.canary}; promoted by hand`);
}

/** `canary abort`: stable gets 100 % at once. With no active run, nothing at all happens. */
export function abort(state: CanaryState | undefined, now: number, actor?: string): CanaryTransition<CanaryState | undefined> {
  if (!state || !isActive(state)) return unchanged(state, noCanary(actor ?? state?.actor));
  return endWithStable(state, now, 'Aborted', `aborted by hand at step ${state.step} (${state.weight.set} % to ${state.canary})${state.promoteFull ? ', cancelling a pending full promotion' : ''}`);
}

/** `canary pause`: hold the weight; analysis still rolls back a failing canary. */
export function pause(state: CanaryState | undefined, now: number, actor?: string): CanaryTransition<CanaryState | undefined> {
  if (!state) return unchanged(state, noCanary(actor));
  if (!isActive(state)) return unchanged(state, over(state, 'pause'));
  if (state.phase === 'Paused') return unchanged(state);
  if (state.promoteFull) return unchanged(state, { code: 'TRELLIS_CONFLICT', reason: `cannot pause ${state.actor}: a full promotion is pending; abort it instead` });
  const reason = `paused at step ${state.step} (${state.weight.set} % to ${state.canary})`;
  const next = record({ ...state, phase: 'Paused', pausedAt: iso(now) }, now, 'paused', reason);
  return { state: next, changed: true, events: [event(next, 'canary_paused', reason)], effects: [] };
}

/** `canary resume`: continue the same step, with the failed checks so far and a fresh window. */
export function resume(state: CanaryState | undefined, now: number, actor?: string): CanaryTransition<CanaryState | undefined> {
  if (!state) return unchanged(state, noCanary(actor));
  if (!isActive(state)) return unchanged(state, over(state, 'resume'));
  if (state.phase === 'Progressing') return unchanged(state);
  const { pausedAt: _p, ...rest } = state;
  const reason = `resumed at step ${state.step} (${state.weight.set} % to ${state.canary})`;
  const next = record({ ...rest, phase: 'Progressing', windowStartedAt: iso(now) }, now, 'resumed', reason);
  // No event kind of its own in the issue's list: a resume is reported as the step going on.
  return { state: next, changed: true, weights: state.step > 0 ? split(next) : allStable(next), events: [event(next, 'canary_step', reason)], effects: [] };
}
