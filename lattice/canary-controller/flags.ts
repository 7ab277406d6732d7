/**
 * `trellis canary start` flags → the complete CanarySpec, through the manifest's own checker,
 * so the command and a `canary:` block accept exactly the same values and defaults. Problems
 * name the flag (`--success-rate`), not the manifest field.
 */
import { checkCanary, type CanarySpec } from '../apps/canary.ts';
import { Problems } from '../apps/problems.ts';
import { TrellisError } from '../errors/index.ts';
import { statusView } from '../canary/index.ts';
import type { CanaryStatusView } from '../wire/index.ts';

export interface CanaryFlags {
  steps?: string;
  /** ms, as the CLI's duration flags give them. */
  interval?: number;
  minRequests?: number;
  successRate?: string;
  p99Ms?: number;
  failureLimit?: number;
  progressDeadline?: number;
  stickyHeader?: string;
  stickyCookie?: string;
  keepCanaryOnRollback?: boolean;
}

const kebab = (field: string) => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Check the flags; TRELLIS_BAD_OPTION listing every problem by flag. */
export function canarySpecFromFlags(f: CanaryFlags): CanarySpec {
  const block: Record<string, unknown> = {};
  const problems: string[] = [];
  if (f.steps !== undefined) {
    const words = f.steps.split(',').map((s) => s.trim());
    const steps = words.map(Number);
    if (words.some((w) => !/^\d+$/.test(w))) problems.push(`--steps: must be comma-separated percentages like 10,30,50,100, got "${f.steps}"`);
    else block.steps = steps;
  }
  if (f.interval !== undefined) block.interval = f.interval;
  if (f.progressDeadline !== undefined) block.progressDeadline = f.progressDeadline;
  if (f.minRequests !== undefined) block.minRequests = f.minRequests;
  if (f.failureLimit !== undefined) block.failureLimit = f.failureLimit;
  if (f.p99Ms !== undefined) block.p99Ms = f.p99Ms;
  if (f.successRate !== undefined) {
    const rate = Number(f.successRate);
    if (f.successRate.trim() === '' || Number.isNaN(rate)) problems.push(`--success-rate: must be a number from 0 to 1 (0.99 is 99 %), got "${f.successRate}"`);
    else block.successRate = rate;
  }
  if (f.stickyHeader !== undefined) block.stickyHeader = f.stickyHeader;
  if (f.stickyCookie !== undefined) block.stickyCookie = f.stickyCookie;
  if (f.keepCanaryOnRollback) block.keepCanaryOnRollback = true;
  const p = new Problems(undefined, undefined);
  const spec = checkCanary(p, [], block);
  for (const problem of p.list) problems.push(`${kebab(problem.path.split(/[.[]/)[0] || 'canary')}: ${problem.message}`);
  if (problems.length > 0 || !spec) throw new TrellisError('TRELLIS_BAD_OPTION', problems.join('\n'));
  return spec;
}

/** The `canary status` table for people: the same as the JSON, at a glance. */
export function statusText(v: CanaryStatusView): string {
  const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(2)}%`);
  const ms = (x: number | undefined) => (x === undefined ? '-' : `${x}ms`);
  const steps = v.steps.map((s, i) => (i + 1 === v.step ? `[${s}]` : String(s))).join(' → ');
  const lines = [
    `${v.actor}${v.app ? ` (app ${v.app})` : ''}: ${v.phase}, ${v.stable} → ${v.canary} (run ${v.generation})`,
    `step ${v.step}/${v.steps.length}: ${steps}`,
    `weight: set ${v.weight.set}%, actual ${v.weight.actual === undefined ? '-' : `${v.weight.actual}%`}; failed checks ${v.failedChecks}/${v.failureLimit}`,
    '',
    ['VERSION', 'REQUESTS', 'SUCCESS', 'P50', 'P99'].map((h, i) => h.padEnd(i === 0 ? 18 : 10)).join('').trimEnd(),
  ];
  for (const [role, version] of [['stable', v.stable], ['canary', v.canary]] as const) {
    const w = v.window[role];
    lines.push([`${version} (${role})`.padEnd(18), String(w.requests).padEnd(10), pct(w.successRate).padEnd(10), ms(w.p50Ms).padEnd(10), ms(w.p99Ms)].join('').trimEnd());
  }
  if (v.history.length > 0) {
    lines.push('', 'HISTORY');
    for (const h of v.history.slice(-10)) lines.push(`${h.at}  ${h.decision.padEnd(12)}  ${h.reason}`);
  }
  return lines.join('\n');
}

/** The `canary status --json` view of a document: K1's view with the last window the leader judged. */
export function viewOf(record: import('./record.ts').CanaryRecord): CanaryStatusView {
  const view = statusView(record);
  const w = record.lastWindow;
  if (!w) return view;
  return { ...view, weight: { set: view.weight.set, ...(w.actual !== undefined ? { actual: w.actual } : {}) }, window: { stable: w.stable, canary: w.canary } };
}
