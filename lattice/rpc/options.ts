/** RPC client options: validated once, at creation, into the complete form the client runs on. */
import { TrellisError } from '../errors/index.ts';
import { intOption, latticeOption } from '../options/index.ts';
import { ATTEMPT_TAKE_MARGIN_MS } from '../wire/index.ts';

/** Longest deadline of one invocation. */
export const MAX_DEADLINE_MS = 3_600_000;

/** The complete, validated options of an RPC client. */
export interface CompiledRpcOptions {
  lattice: string;
  caller: string;
  deadlineMs: number;
  attemptTimeoutMs: number;
  minAttemptTimeoutMs: number;
}

/**
 * Validate RPC client options; zero, negative, NaN or absurd values fail naming the option. An
 * attempt must outlast the workers' take margin twice over, or no worker would ever take a call.
 */
export function compileRpcOptions(input: { lattice: string; caller?: string; deadlineMs?: number; attemptTimeoutMs?: number; minAttemptTimeoutMs?: number }): CompiledRpcOptions {
  const floor = 2 * ATTEMPT_TAKE_MARGIN_MS;
  const attemptTimeoutMs = intOption('attemptTimeoutMs', input.attemptTimeoutMs ?? 2000, floor, MAX_DEADLINE_MS);
  return {
    lattice: latticeOption(input.lattice),
    caller: input.caller ?? 'client',
    deadlineMs: intOption('deadlineMs', input.deadlineMs ?? 10_000, 1, MAX_DEADLINE_MS),
    attemptTimeoutMs,
    minAttemptTimeoutMs: Math.min(intOption('minAttemptTimeoutMs', input.minAttemptTimeoutMs ?? 500, floor, MAX_DEADLINE_MS), attemptTimeoutMs),
  };
}

/** The deadline of one invocation: the client's default, or a valid per-call one. */
export function callDeadlineMs(deadlineMs: number | undefined, fallback: number): number {
  if (deadlineMs === undefined) return fallback;
  if (!Number.isInteger(deadlineMs) || deadlineMs < 1 || deadlineMs > MAX_DEADLINE_MS) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `deadline must be an integer from 1 to ${MAX_DEADLINE_MS} ms, got ${deadlineMs}`);
  }
  return deadlineMs;
}
