/**
 * The canary state as a document: checking one read back from KV (a new leader must not act on
 * a corrupt or foreign document) and the `trellis canary status` view of it.
 */
import type { CanarySpec } from '../apps/index.ts';
import { TrellisError } from '../errors/index.ts';
import { CanaryPhases, isRecord, type CanaryPhase, type CanaryState, type CanaryStatusView, type VersionSummary, type VersionSummaryView } from '../wire/index.ts';
import { actualWeight, emptyTotals, summarize, type AnalysisWindow } from './analysis.ts';

const HISTORY_DECISIONS = new Set(['started', 'restarted', 'step', 'failed-check', 'rolled-back', 'promoted', 'promote-full-requested', 'paused', 'resumed', 'aborted']);

/** Check a stored canary state; TRELLIS_BAD_REQUEST naming the first bad field. */
export function checkCanaryState(value: unknown): CanaryState {
  const bad = (field: string, why: string) => new TrellisError('TRELLIS_BAD_REQUEST', `canary state: ${field} ${why}`);
  if (!isRecord(value)) throw bad('document', 'is not an object');
  const str = (field: string, optional = false) => {
    const v = value[field];
    if (v === undefined && optional) return;
    if (typeof v !== 'string' || v.length === 0) throw bad(field, `must be a non-empty string, got ${JSON.stringify(v)}`);
  };
  const time = (field: string, optional = false) => {
    str(field, optional);
    if (value[field] !== undefined && Number.isNaN(Date.parse(value[field] as string))) throw bad(field, `must be an ISO time, got ${JSON.stringify(value[field])}`);
  };
  const int = (field: string, v: unknown, min: number) => {
    if (!Number.isSafeInteger(v) || (v as number) < min) throw bad(field, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  };
  ['actor', 'stable', 'canary'].forEach((f) => str(f));
  ['app', 'canaryDigest'].forEach((f) => str(f, true));
  ['startedAt', 'stepStartedAt', 'windowStartedAt'].forEach((f) => time(f));
  ['lastDataAt', 'pausedAt', 'endedAt'].forEach((f) => time(f, true));
  if (!CanaryPhases.includes(value.phase as CanaryPhase)) throw bad('phase', `must be one of ${CanaryPhases.join(', ')}, got ${JSON.stringify(value.phase)}`);
  const steps = value.steps;
  if (!Array.isArray(steps) || steps.length === 0 || !steps.every((s, i) => Number.isInteger(s) && s >= 1 && s <= 100 && (i === 0 || s > steps[i - 1])) || steps.at(-1) !== 100) {
    throw bad('steps', `must be ascending percentages ending at 100, got ${JSON.stringify(steps)}`);
  }
  int('step', value.step, 0);
  if ((value.step as number) > steps.length) throw bad('step', `must be at most ${steps.length}, got ${value.step}`);
  if (!isRecord(value.weight)) throw bad('weight', 'must be { set }');
  int('weight.set', value.weight.set, 0);
  if ((value.weight.set as number) > 100) throw bad('weight.set', `must be at most 100, got ${value.weight.set}`);
  int('failedChecks', value.failedChecks, 0);
  int('failureLimit', value.failureLimit, 1);
  int('generation', value.generation, 1);
  if (value.promoteFull !== undefined && typeof value.promoteFull !== 'boolean') throw bad('promoteFull', 'must be true or false');
  checkSpec(value.spec, bad);
  if (!Array.isArray(value.history)) throw bad('history', 'must be a list');
  value.history.forEach((h, i) => {
    if (!isRecord(h) || typeof h.at !== 'string' || typeof h.reason !== 'string' || !HISTORY_DECISIONS.has(h.decision as string) || !Number.isInteger(h.step) || !Number.isInteger(h.weight)) {
      throw bad(`history[${i}]`, 'must be { at, decision, reason, step, weight }');
    }
  });
  return value as unknown as CanaryState;
}

function checkSpec(spec: unknown, bad: (field: string, why: string) => TrellisError): asserts spec is CanarySpec {
  if (!isRecord(spec)) throw bad('spec', 'must be the canary settings');
  const positive = ['intervalMs', 'minRequests', 'failureLimit', 'progressDeadlineMs', 'p99Ms'];
  for (const k of positive) if (typeof spec[k] !== 'number' || !((spec[k] as number) > 0)) throw bad(`spec.${k}`, `must be a number above 0, got ${JSON.stringify(spec[k])}`);
  if (typeof spec.successRate !== 'number' || !(spec.successRate >= 0 && spec.successRate <= 1)) throw bad('spec.successRate', `must be from 0 to 1, got ${JSON.stringify(spec.successRate)}`);
  if (!Array.isArray(spec.steps)) throw bad('spec.steps', 'must be a list');
  if (typeof spec.keepCanaryOnRollback !== 'boolean') throw bad('spec.keepCanaryOnRollback', 'must be true or false');
  for (const k of ['stickyHeader', 'stickyCookie']) if (spec[k] !== undefined && typeof spec[k] !== 'string') throw bad(`spec.${k}`, 'must be a string');
}

/** The `canary status --json` view: the state with its last window summarized. */
export function statusView(state: CanaryState, window?: AnalysisWindow): CanaryStatusView {
  const w = window ?? { stable: emptyTotals(), canary: emptyTotals() };
  const actual = window ? actualWeight(window) : undefined;
  return {
    actor: state.actor,
    ...(state.app ? { app: state.app } : {}),
    stable: state.stable,
    canary: state.canary,
    phase: state.phase,
    step: state.step,
    steps: [...state.steps],
    weight: { set: state.weight.set, actual: actual ?? null },
    failedChecks: state.failedChecks,
    failureLimit: state.failureLimit,
    generation: state.generation,
    window: { stable: summaryView(summarize(w.stable)), canary: summaryView(summarize(w.canary)) },
    history: state.history.map((h) => ({ at: h.at, decision: h.decision, reason: h.reason, ...(h.numbers ? { numbers: h.numbers } : {}) })),
  };
}

/** The status view of a summary: the keys always there, null where a window has no data (scripts read them with jq). */
export function summaryView(s: VersionSummary): VersionSummaryView {
  return { requests: s.requests, failures: s.failures, successRate: s.successRate ?? null, p50Ms: s.p50Ms ?? null, p99Ms: s.p99Ms ?? null };
}
