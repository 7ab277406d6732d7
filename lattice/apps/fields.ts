/**
 * Field checks that report into a Problems collector instead of throwing, so one pass over a
 * manifest finds every problem. Each returns the checked value, or undefined when it reported.
 */
import { isRecord } from '../wire/index.ts';
import { closest, type Path, type Problems } from './problems.ts';

export const describe = (value: unknown): string =>
  value === null || value === undefined ? 'nothing' : Array.isArray(value) ? 'a list' : isRecord(value) ? 'a map' : typeof value === 'string' ? `"${value}"` : String(value);

/** A map with only `known` fields (each unknown one reported at its key); undefined if not a map. */
export function fields(p: Problems, path: Path, value: unknown, known: readonly string[]): Record<string, unknown> | undefined {
  if (!isRecord(value)) {
    p.add(path, `must be a map, got ${describe(value)}`);
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const guess = closest(key, known);
    p.add([...path, key], `unknown field${guess ? ` (did you mean ${guess}?)` : ''}; known: ${known.join(', ')}`, { key: true });
  }
  return value;
}

/** A list (absent: `undefined` with no problem when optional). */
export function list(p: Problems, path: Path, value: unknown, options: { required?: boolean; min?: number; max?: number } = {}): unknown[] | undefined {
  if (value === undefined || value === null) {
    if (options.required) p.add(path, 'is required');
    return undefined;
  }
  if (!Array.isArray(value)) {
    p.add(path, `must be a list, got ${describe(value)}`);
    return undefined;
  }
  if (options.min !== undefined && value.length < options.min) p.add(path, `must hold at least ${options.min} item${options.min === 1 ? '' : 's'}`);
  if (options.max !== undefined && value.length > options.max) p.add(path, `must hold at most ${options.max} items`);
  return value;
}

/** A string, optionally checked by `test` (which returns a problem, or undefined). */
export function str(p: Problems, path: Path, value: unknown, options: { required?: boolean; test?: (s: string) => string | undefined } = {}): string | undefined {
  if (value === undefined || value === null) {
    if (options.required) p.add(path, 'is required');
    return undefined;
  }
  if (typeof value !== 'string') {
    p.add(path, `must be a string, got ${describe(value)}`);
    return undefined;
  }
  const problem = options.test?.(value);
  if (problem) {
    p.add(path, problem);
    return undefined;
  }
  return value;
}

/** An integer from `min` to `max`; `what` words the expectation ("a positive integer"). */
export function int(p: Problems, path: Path, value: unknown, min: number, max: number, what = `an integer from ${min} to ${max}`): number | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    p.add(path, `must be ${what}, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

/** A map of string values (labels, link config); numbers and booleans are refused, not coerced. */
export function stringMap(p: Problems, path: Path, value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) {
    p.add(path, `must be a map of strings, got ${describe(value)}`);
    return undefined;
  }
  const out: Record<string, string> = {};
  let ok = true;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') out[k] = v;
    else {
      ok = false;
      p.add([...path, k], `must be a string, got ${describe(v)} (quote it: "${String(v)}")`);
    }
  }
  return ok ? out : undefined;
}

/** Names of apps, actors, spreads: a token of letters, digits, - and _. */
export function nameProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return 'must hold at most 63 characters';
  return /^[A-Za-z0-9_-]+$/.test(s) ? undefined : `"${s}" must hold only letters, digits, - and _`;
}

/** The message of what `check` throws, or undefined when it passes. */
export function thrown(check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
