/**
 * The analysis of one window of live metrics: should the canary wait, advance a step, count a
 * failed check, roll back, or be promoted? Pure: the window, the thresholds, the state and the
 * time come in; a decision with its reason and numbers comes out (machine.ts applies it).
 *
 * Behaviour copied where the issue is silent, and why:
 * - Flagger runs one check per `interval` and advances one step per passing check; a failing
 *   check holds the weight and counts toward `threshold` (our failureLimit). The count is kept
 *   across steps and only reset by a new revision: a canary that fails at 10 % and again at
 *   30 % is the same bad canary. Copied, so failure limits mean what Flagger users expect.
 * - Flagger treats "no values" as a failure. The issue asks instead that a window with too
 *   little traffic wait (judging 12 requests against 99 % is noise), and that waiting end at
 *   the progress deadline with a rollback, reason "no data". The deadline counts from the last
 *   progress (step start, judged window, resume). Flagger's progressDeadlineSeconds (same
 *   600 s default) bounds how long a canary's pods may take to become ready; here it bounds
 *   how long a canary may go without enough traffic to be judged, which is what we can see.
 * - A paused canary (Argo Rollouts' `pause`) holds its weight but stays watched: a failing
 *   window still counts and rolls back, since pausing must not leave a bad canary serving; a
 *   healthy one does not advance; the deadline does not run (no rollback for lack of data).
 */
import type { CanarySpec } from '../apps/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { CanaryState, VersionSummary, VersionWindow } from '../wire/index.ts';
import { emptyHistogram, mergeWireInto, quantile, type Histogram } from './histogram.ts';

/** One version's requests over a window, merged from every reporter. */
export interface VersionTotals {
  requests: number;
  failures: number;
  histogram: Histogram;
}

/** The window the analysis judges: the canary's totals, and the stable's for comparison and status. */
export interface AnalysisWindow {
  stable: VersionTotals;
  canary: VersionTotals;
}

export function emptyTotals(): VersionTotals {
  return { requests: 0, failures: 0, histogram: emptyHistogram() };
}

/** Add wire windows (any reporters, any seconds) into `into`; bad windows throw TRELLIS_BAD_REQUEST. */
export function addWindows(into: VersionTotals, windows: Iterable<VersionWindow>): VersionTotals {
  for (const w of windows) {
    // Checked before anything is added: a bad window from one reporter leaves the totals as they were.
    if (!Number.isSafeInteger(w.requests) || w.requests < 0 || !Number.isSafeInteger(w.failures) || w.failures < 0 || w.failures > w.requests) {
      throw new TrellisError('TRELLIS_BAD_REQUEST', `window: requests and failures must be integers with 0 <= failures <= requests, got ${String(w.requests)} and ${String(w.failures)}`);
    }
    mergeWireInto(into.histogram, w.histogram);
    into.requests += w.requests;
    into.failures += w.failures;
  }
  return into;
}

/** A version's window as status shows it. */
export function summarize(t: VersionTotals): VersionSummary {
  const out: VersionSummary = { requests: t.requests, failures: t.failures };
  if (t.requests > 0) out.successRate = (t.requests - t.failures) / t.requests;
  const p50 = quantile(t.histogram, 0.5);
  const p99 = quantile(t.histogram, 0.99);
  if (p50 !== undefined) out.p50Ms = round(p50);
  if (p99 !== undefined) out.p99Ms = round(p99);
  return out;
}

/** The canary's measured share of requests, in percent (weight.actual); undefined without requests. */
export function actualWeight(w: AnalysisWindow): number | undefined {
  const n = w.stable.requests + w.canary.requests;
  return n === 0 ? undefined : round((100 * w.canary.requests) / n);
}

export type DecisionKind = 'wait' | 'promote-step' | 'fail-check' | 'rollback' | 'promoted';

/** What the analysis decided, for the run and step it looked at (stale decisions are ignored). */
export interface Decision {
  kind: DecisionKind;
  reason: string;
  numbers: Record<string, number>;
  generation: number;
  step: number;
  /** A threshold was missed: this decision is one failed check (a fail-check, or the rollback at the limit). */
  failedCheck?: boolean;
  /**
   * The window judged (the state's windowStartedAt): a writer working from a lagging copy of the
   * document may judge a window again that was already counted; tick() then knows.
   */
  windowStartedAt?: string;
}

/** The reason of every rollback for lack of traffic starts with this. */
export const NO_DATA = 'no data';

/** When the window being collected began (also where the progress deadline counts from). */
export function windowStart(state: CanaryState): number {
  return Date.parse(state.windowStartedAt);
}

/**
 * Judge a window. `spec` is the run's thresholds (the controller passes `state.spec`), `now`
 * the time in ms since the epoch. The window must cover `state.windowStartedAt` to `now`.
 */
export function analyze(window: AnalysisWindow, spec: CanarySpec, state: CanaryState, now: number): Decision {
  const decide = (kind: DecisionKind, reason: string, numbers: Record<string, number> = {}): Decision => ({ kind, reason, numbers, generation: state.generation, step: state.step, windowStartedAt: state.windowStartedAt });
  if (state.phase !== 'Progressing' && state.phase !== 'Paused') return decide('wait', `canary is ${state.phase}`);
  if (state.promoteFull) return decide('wait', 'full promotion pending: waiting for the canary to serve');
  const paused = state.phase === 'Paused';
  const started = windowStart(state);
  const waited = now - started;
  const c = window.canary;
  const noData = (what: string) =>
    decide('rollback', `${NO_DATA}: ${what} within the progress deadline of ${seconds(spec.progressDeadlineMs)}`, {
      canaryRequests: c.requests,
      minRequests: spec.minRequests,
      waitedMs: waited,
      progressDeadlineMs: spec.progressDeadlineMs,
    });
  const pastDeadline = !paused && waited >= spec.progressDeadlineMs;

  if (state.step === 0) {
    if (pastDeadline) return noData('the canary did not start serving');
    return decide('wait', paused ? 'paused before the first step' : 'waiting for the canary to serve');
  }
  if (c.requests < spec.minRequests) {
    if (pastDeadline) return noData(`${c.requests} canary requests, ${spec.minRequests} needed,`);
    return decide('wait', `too little data: ${c.requests} of ${spec.minRequests} canary requests`, { canaryRequests: c.requests, minRequests: spec.minRequests });
  }
  // Enough data but the interval is not over: one check per interval, as Flagger runs them.
  if (waited < spec.intervalMs) return decide('wait', `collecting: ${seconds(waited)} of ${seconds(spec.intervalMs)}`, { canaryRequests: c.requests, waitedMs: waited });

  const ok = c.requests - c.failures;
  const successRate = ok / c.requests;
  const p99 = quantile(c.histogram, 0.99);
  const numbers: Record<string, number> = {
    canaryRequests: c.requests,
    canaryFailures: c.failures,
    successRate,
    minSuccessRate: spec.successRate,
    maxP99Ms: spec.p99Ms,
    failedChecks: state.failedChecks,
    failureLimit: spec.failureLimit,
  };
  if (p99 !== undefined) numbers.p99Ms = round(p99);
  const missed: string[] = [];
  if (successRate < spec.successRate) missed.push(`success rate ${percent(successRate)} below ${percent(spec.successRate)} (${ok} of ${c.requests} ok)`);
  if (p99 !== undefined && p99 > spec.p99Ms) missed.push(`p99 ${round(p99)} ms above ${spec.p99Ms} ms`);
  if (missed.length > 0) {
    const failed = state.failedChecks + 1;
    numbers.failedChecks = failed;
    const tally = `failed checks ${failed} of ${spec.failureLimit}`;
    return { ...decide(failed >= spec.failureLimit ? 'rollback' : 'fail-check', `${missed.join('; ')}; ${tally}`, numbers), failedCheck: true };
  }
  const healthy = `success rate ${percent(successRate)} (min ${percent(spec.successRate)}), p99 ${p99 === undefined ? 'n/a' : `${round(p99)} ms`} (max ${spec.p99Ms} ms), ${c.requests} requests`;
  if (paused) return decide('wait', `paused; window healthy: ${healthy}`, numbers);
  if (state.step >= state.steps.length) return decide('promoted', `last step healthy: ${healthy}`, numbers);
  return decide('promote-step', `step ${state.step} healthy: ${healthy}`, numbers);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(2)} %`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
