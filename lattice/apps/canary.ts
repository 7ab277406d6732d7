/**
 * The `canary:` block of a manifest actor: the camelCase flags of `trellis canary start`,
 * checked here and carried in AppActorSpec.canary in a complete form (defaults filled in,
 * durations in milliseconds with the unit in the name), so the canary controller reads one
 * shape whether a canary came from a manifest or from the command.
 */
import { parseDuration } from '../options/index.ts';
import { describe, fields, int, list, str } from './fields.ts';
import type { Path, Problems } from './problems.ts';

/** A canary's settings in their complete form. */
export interface CanarySpec {
  /** Canary traffic percentages, ascending, ending at 100. */
  steps: number[];
  intervalMs: number;
  minRequests: number;
  /** Lowest acceptable share of successful canary requests, 0..1. */
  successRate: number;
  p99Ms: number;
  failureLimit: number;
  progressDeadlineMs: number;
  stickyHeader?: string;
  stickyCookie?: string;
  keepCanaryOnRollback: boolean;
}

/** Flagger-like defaults, as `trellis canary start` has them. */
export const CANARY_DEFAULTS: Readonly<CanarySpec> = Object.freeze({
  steps: [10, 30, 50, 100],
  intervalMs: 30_000,
  minRequests: 100,
  successRate: 0.99,
  p99Ms: 500,
  failureLimit: 2,
  progressDeadlineMs: 600_000,
  keepCanaryOnRollback: false,
});

const FIELDS = ['steps', 'interval', 'minRequests', 'successRate', 'p99Ms', 'failureLimit', 'progressDeadline', 'stickyHeader', 'stickyCookie', 'keepCanaryOnRollback'] as const;

/** An HTTP header or cookie name (an RFC 9110 token). */
const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A duration field: text in the CLI's one format (`30s`), or a number of milliseconds. */
function durationField(p: Problems, path: Path, value: unknown, minMs: number, maxMs: number): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') {
    p.add(path, `must be a duration like 30s, got ${describe(value)}`);
    return undefined;
  }
  let ms: number;
  try {
    ms = parseDuration(String(value), 'duration');
  } catch (err) {
    p.add(path, (err as Error).message.replace(/^option duration: /, ''));
    return undefined;
  }
  if (ms < minMs || ms > maxMs) {
    p.add(path, `must be from ${minMs / 1000}s to ${maxMs / 1000}s, got ${value}`);
    return undefined;
  }
  return ms;
}

/** Check a canary block; reports into `p` and returns the complete form when it is valid. */
export function checkCanary(p: Problems, path: Path, value: unknown): CanarySpec | undefined {
  const before = p.list.length;
  const o = fields(p, path, value, FIELDS);
  if (!o) return undefined;
  const out: CanarySpec = { ...CANARY_DEFAULTS, steps: [...CANARY_DEFAULTS.steps] };
  const steps = o.steps === undefined ? undefined : list(p, [...path, 'steps'], o.steps, { min: 1, max: 100 });
  if (steps) {
    const checked = steps.map((s, i) => int(p, [...path, 'steps', i], s, 1, 100, 'a percentage from 1 to 100'));
    if (checked.every((s) => s !== undefined) && checked.length > 0) {
      const ascending = checked.every((s, i) => i === 0 || s! > checked[i - 1]!);
      if (!ascending) p.add([...path, 'steps'], `must ascend, got ${checked.join(', ')}`);
      else if (checked.at(-1) !== 100) p.add([...path, 'steps'], `must end at 100, got ${checked.join(', ')}`);
      else out.steps = checked as number[];
    }
  }
  if (o.interval !== undefined) out.intervalMs = durationField(p, [...path, 'interval'], o.interval, 1000, 86_400_000) ?? out.intervalMs;
  if (o.progressDeadline !== undefined) out.progressDeadlineMs = durationField(p, [...path, 'progressDeadline'], o.progressDeadline, 1000, 7 * 86_400_000) ?? out.progressDeadlineMs;
  if (o.minRequests !== undefined) out.minRequests = int(p, [...path, 'minRequests'], o.minRequests, 1, 1_000_000_000, 'a positive integer') ?? out.minRequests;
  if (o.failureLimit !== undefined) out.failureLimit = int(p, [...path, 'failureLimit'], o.failureLimit, 1, 1000, 'an integer from 1 to 1000') ?? out.failureLimit;
  if (o.successRate !== undefined) {
    if (typeof o.successRate !== 'number' || !(o.successRate >= 0 && o.successRate <= 1)) p.add([...path, 'successRate'], `must be a number from 0 to 1 (0.99 is 99 %), got ${describe(o.successRate)}`);
    else out.successRate = o.successRate;
  }
  if (o.p99Ms !== undefined) {
    if (typeof o.p99Ms !== 'number' || !(o.p99Ms > 0 && o.p99Ms <= 3_600_000)) p.add([...path, 'p99Ms'], `must be a number of milliseconds above 0, got ${describe(o.p99Ms)}`);
    else out.p99Ms = o.p99Ms;
  }
  if (o.progressDeadline !== undefined && o.interval !== undefined && out.progressDeadlineMs < out.intervalMs) {
    p.add([...path, 'progressDeadline'], 'must not be shorter than interval');
  }
  const tokenTest = (s: string) => (HTTP_TOKEN.test(s) ? undefined : `"${s}" is not a valid name (letters, digits and -, no spaces)`);
  const header = str(p, [...path, 'stickyHeader'], o.stickyHeader, { test: tokenTest });
  const cookie = str(p, [...path, 'stickyCookie'], o.stickyCookie, { test: tokenTest });
  if (o.stickyHeader !== undefined && o.stickyCookie !== undefined) p.add([...path, 'stickyCookie'], 'give stickyHeader or stickyCookie, not both');
  if (header) out.stickyHeader = header.toLowerCase();
  if (cookie) out.stickyCookie = cookie;
  if (o.keepCanaryOnRollback !== undefined) {
    if (typeof o.keepCanaryOnRollback !== 'boolean') p.add([...path, 'keepCanaryOnRollback'], `must be true or false, got ${describe(o.keepCanaryOnRollback)}`);
    else out.keepCanaryOnRollback = o.keepCanaryOnRollback;
  }
  return p.list.length === before ? out : undefined;
}
