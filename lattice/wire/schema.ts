/**
 * A small typed validator for wire messages: each check turns `unknown` into a typed value or
 * throws TRELLIS_BAD_REQUEST naming the field's path, so a handler never sees a half-parsed
 * message. Objects reject unknown fields: a typo in a request is an error, not silently ignored.
 * Hand-written instead of a schema library because the wire module stays dependency-free.
 */
import { TrellisError } from '../errors/index.ts';
import { isRecord } from './codec.ts';

/** A check: the value at `path` in, the typed value out (or a TRELLIS_BAD_REQUEST). */
export type Check<T> = (value: unknown, path: string) => T;
/** The type a check produces. */
export type Checked<C> = C extends Check<infer T> ? T : never;

/** Fail a check at `path`. */
export function invalid(path: string, message: string): never {
  throw new TrellisError('TRELLIS_BAD_REQUEST', `${path}: ${message}`);
}

const describe = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value);

/** A string of at most `maxLength` characters (default 4096), optionally matching a test. */
export function string(options: { maxLength?: number; minLength?: number; test?: (s: string) => string | undefined } = {}): Check<string> {
  const { maxLength = 4096, minLength = 0 } = options;
  return (value, path) => {
    if (typeof value !== 'string') invalid(path, `must be a string, got ${describe(value)}`);
    if (value.length < minLength) invalid(path, minLength === 1 ? 'must not be empty' : `must hold at least ${minLength} characters`);
    if (value.length > maxLength) invalid(path, `must hold at most ${maxLength} characters`);
    const problem = options.test?.(value);
    if (problem) invalid(path, problem);
    return value;
  };
}

/** An integer from `min` to `max`. */
export function integer(min: number, max: number): Check<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      invalid(path, `must be an integer from ${min} to ${max}, got ${typeof value === 'number' ? value : describe(value)}`);
    }
    return value;
  };
}

export const boolean: Check<boolean> = (value, path) => {
  if (typeof value !== 'boolean') invalid(path, `must be a boolean, got ${describe(value)}`);
  return value;
};

/** The field may be absent (undefined or null on the wire). */
export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (value, path) => (value === undefined || value === null ? undefined : check(value, path));
}

/** A list of at most `maxItems` items. */
export function list<T>(item: Check<T>, maxItems = 1024): Check<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) invalid(path, `must be a list, got ${describe(value)}`);
    if (value.length > maxItems) invalid(path, `must hold at most ${maxItems} items`);
    return value.map((v, i) => item(v, `${path}[${i}]`));
  };
}

/** A map of string keys to checked values, at most `maxEntries` of them. */
export function map<T>(entry: Check<T>, maxEntries = 256): Check<Record<string, T>> {
  return (value, path) => {
    if (!isRecord(value)) invalid(path, `must be a map, got ${describe(value)}`);
    const entries = Object.entries(value);
    if (entries.length > maxEntries) invalid(path, `must hold at most ${maxEntries} entries`);
    const out: Record<string, T> = {};
    for (const [k, v] of entries) out[k] = entry(v, `${path}.${k}`);
    return out;
  };
}

/** Any map, passed on unchecked (a nested document another validator owns, e.g. a policy). */
export const anyMap: Check<Record<string, unknown>> = (value, path) => {
  if (!isRecord(value)) invalid(path, `must be a map, got ${describe(value)}`);
  return value;
};

type Shape = Record<string, Check<unknown>>;
/** Fields whose check may give undefined become optional properties. */
type ObjectOf<S extends Shape> = { [K in keyof S as undefined extends Checked<S[K]> ? never : K]: Checked<S[K]> } & {
  [K in keyof S as undefined extends Checked<S[K]> ? K : never]?: Checked<S[K]>;
};

/** A map with exactly these fields (unknown fields are refused); absent optional fields stay absent. */
export function object<S extends Shape>(shape: S): Check<ObjectOf<S>> {
  const known = new Set(Object.keys(shape));
  return (value, path) => {
    if (!isRecord(value)) invalid(path, `must be a map, got ${describe(value)}`);
    for (const key of Object.keys(value)) if (!known.has(key)) invalid(`${path}.${key}`, 'unknown field');
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(shape)) {
      const checked = check(value[key], `${path}.${key}`);
      if (checked !== undefined) out[key] = checked;
    }
    return out as ObjectOf<S>;
  };
}

/** Binary data of at most `maxBytes`. */
export function bytes(maxBytes = Number.MAX_SAFE_INTEGER): Check<Uint8Array> {
  return (value, path) => {
    if (!(value instanceof Uint8Array)) invalid(path, `must be binary, got ${describe(value)}`);
    if (value.length > maxBytes) invalid(path, `must hold at most ${maxBytes} bytes`);
    return value;
  };
}

/** A list of exactly these items, in this order. */
export function tuple<T extends Check<unknown>[]>(...items: T): Check<{ [K in keyof T]: Checked<T[K]> }> {
  return (value, path) => {
    if (!Array.isArray(value)) invalid(path, `must be a list, got ${describe(value)}`);
    if (value.length > items.length) invalid(path, `must hold at most ${items.length} items`);
    return items.map((check, i) => check(value[i], `${path}[${i}]`)) as { [K in keyof T]: Checked<T[K]> };
  };
}

/** Any value, passed on unchecked (its size is bounded by the wire limits of the frame). */
export const anyValue: Check<unknown> = (value) => value;

/**
 * A map whose listed fields are checked, passed on whole: for documents other participants
 * write (inventories in events), where a newer version may add fields this one does not know.
 */
export function fields<S extends Shape>(shape: S): Check<ObjectOf<S>> {
  return (value, path) => {
    if (!isRecord(value)) invalid(path, `must be a map, got ${describe(value)}`);
    for (const [key, check] of Object.entries(shape)) check(value[key], `${path}.${key}`);
    return value as ObjectOf<S>;
  };
}
