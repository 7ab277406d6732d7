/**
 * Codecs for the lattice wire: msgpack (msgpackr) for invocation and control bodies, JSON for
 * CloudEvents. Decoding never throws raw library errors: malformed input becomes
 * TRELLIS_BAD_REQUEST so responders can answer it instead of crashing.
 */
import { C1, Packr } from 'msgpackr';
import { TrellisError } from '../errors/index.ts';
import { DEFAULT_WIRE_LIMITS, scanMsgpack, type WireLimits } from './limits.ts';

// One configuration for every participant: plain objects (no records extension), so any
// msgpack implementation can read our bodies, and Uint8Array stays binary.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

/** Encode a value as msgpack. */
export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/**
 * Decode msgpack, or throw TRELLIS_BAD_REQUEST naming what was expected. The frame is scanned
 * against `limits` first (see limits.ts), so hostile nesting or sizes never reach msgpackr.
 */
export function decode<T = unknown>(bytes: Uint8Array, what = 'message', limits: WireLimits = DEFAULT_WIRE_LIMITS): T {
  scanMsgpack(bytes, limits, what);
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `${what}: malformed msgpack (${(err as Error).message})`, { cause: err });
  }
  // 0xC1 is "never used" in msgpack; msgpackr hands back a marker instead of failing.
  if (value === C1) throw new TrellisError('TRELLIS_BAD_REQUEST', `${what}: malformed msgpack (reserved byte 0xc1)`);
  return value as T;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

/** Encode JSON as UTF-8 bytes. */
export function encodeJson(value: unknown): Uint8Array {
  return textEncoder.encode(JSON.stringify(value));
}

/** Decode UTF-8 JSON, or throw TRELLIS_BAD_REQUEST. */
export function decodeJson<T = unknown>(bytes: Uint8Array, what = 'message'): T {
  try {
    return JSON.parse(textDecoder.decode(bytes)) as T;
  } catch (err) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `${what}: malformed JSON (${(err as Error).message})`, { cause: err });
  }
}

/** True when `value` is a plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
