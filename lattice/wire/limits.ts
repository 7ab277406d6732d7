/**
 * Size limits of wire messages and the msgpack pre-scan that enforces them before anything is
 * decoded. msgpackr decodes recursively and allocates what a header announces, so a hostile
 * frame (a few kilobytes of nested one-element lists, a map announcing millions of entries) would
 * blow the stack or waste the heap of whoever decodes it. The scan walks the frame iteratively,
 * reading only headers (strings and binaries are skipped by their length), and refuses it at the
 * first limit it crosses, naming the limit and the byte offset. Only a frame that passed reaches
 * msgpackr, and only a decoded value reaches a schema validator, and only a validated request a
 * handler: nothing sees a message half-parsed.
 */
import { TrellisError } from '../errors/index.ts';

/** Limits of one kind of message. */
export interface WireLimits {
  /** Largest frame, bytes (TRELLIS_PAYLOAD_TOO_LARGE above it). */
  readonly maxBytes: number;
  /** Deepest nesting of lists and maps (a scalar root is depth 0). */
  readonly maxDepth: number;
  /** Most items in one list, or entries in one map. */
  readonly maxItems: number;
  /** Most values in the whole frame (every scalar, list and map counts one). */
  readonly maxValues: number;
  /** Longest string, UTF-8 bytes (binaries are bounded by maxBytes alone). */
  readonly maxStringBytes: number;
}

/**
 * What every decode checks unless told otherwise: generous, it only rules out frames that could
 * hurt the decoder. NATS's max_payload (1 MiB by default, 64 MiB at most) bounds size already.
 */
export const DEFAULT_WIRE_LIMITS: WireLimits = { maxBytes: 64 * 1024 * 1024, maxDepth: 64, maxItems: 1 << 20, maxValues: 1 << 21, maxStringBytes: 16 * 1024 * 1024 };

/**
 * Control requests: small documents (the largest is an actorStart with a sandbox policy). The
 * byte limit is the host's `maxControlPayloadBytes` (64 KiB by default).
 */
export const CONTROL_WIRE_LIMITS: WireLimits = { maxBytes: 64 * 1024, maxDepth: 16, maxItems: 1024, maxValues: 8192, maxStringBytes: 16 * 1024 };

/**
 * Invocations (an ActorRequest: a map, its header list of pairs, a binary body). Header count
 * and string length are HTTP-sized; the body is a binary, bounded by NATS's max_payload.
 */
export const RPC_WIRE_LIMITS: WireLimits = { maxBytes: 64 * 1024 * 1024, maxDepth: 4, maxItems: 4096, maxValues: 16_384, maxStringBytes: 256 * 1024 };

/** Provider requests: op, config, args (a keyvalue value is a binary), allowed hosts. */
export const PROVIDER_WIRE_LIMITS: WireLimits = { maxBytes: 64 * 1024 * 1024, maxDepth: 16, maxItems: 4096, maxValues: 65_536, maxStringBytes: 1024 * 1024 };

/** msgpack extension types our encoder writes (undefined, timestamp); any other is refused. */
const ACCEPTED_EXT_TYPES = new Set([0, -1]);

function refuse(what: string, at: number, message: string): never {
  throw new TrellisError('TRELLIS_BAD_REQUEST', `${what}: ${message} (at byte ${at})`);
}

/**
 * Check that `bytes` holds exactly one well-formed msgpack value within `limits`; throws
 * TRELLIS_PAYLOAD_TOO_LARGE (size) or TRELLIS_BAD_REQUEST (structure: truncated, trailing bytes,
 * too deep, too many items, a string too long, a map key that is not a string or integer, an
 * unknown extension, the reserved byte 0xc1). Never recursive, never allocates per value.
 */
export function scanMsgpack(bytes: Uint8Array, limits: WireLimits, what = 'message'): void {
  const size = bytes.length;
  if (size > limits.maxBytes) throw new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', `${what}: ${size} bytes exceeds the limit of ${limits.maxBytes}`);
  if (size === 0) refuse(what, 0, 'empty body, expected msgpack');
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  // Per open container: values still to read in it, and whether it is a map (keys at even counts).
  const left: number[] = [];
  const isMap: boolean[] = [];
  let pending = 1; // values still to read at the current level (the root: one)
  let inMap = false;
  let values = 0;
  let pos = 0;
  const need = (n: number, at: number) => {
    if (pos + n > size) refuse(what, at, 'truncated frame');
  };
  for (;;) {
    if (pending === 0) {
      if (left.length === 0) break;
      pending = left.pop()!;
      inMap = isMap.pop()!;
      continue;
    }
    // In a map, an odd number of values left means the next one is a value, even a key.
    const isKey = inMap && pending % 2 === 0;
    pending--;
    if (++values > limits.maxValues) refuse(what, pos, `more than ${limits.maxValues} values`);
    const at = pos;
    need(1, at);
    const b = bytes[pos++]!;
    let container = -1; // items of a list or map that starts here (maps: entries)
    let map = false;
    let skip = 0; // payload bytes to skip (strings, binaries, numbers, extensions)
    let str = false;
    if (b <= 0x7f || b >= 0xe0) {
      // fixint
    } else if (b <= 0x8f) {
      container = b & 0x0f;
      map = true;
    } else if (b <= 0x9f) {
      container = b & 0x0f;
    } else if (b <= 0xbf) {
      skip = b & 0x1f;
      str = true;
    } else {
      switch (b) {
        case 0xc0: case 0xc2: case 0xc3: break; // nil, false, true
        case 0xc1: refuse(what, at, 'reserved byte 0xc1');
        case 0xc4: need(1, at); skip = bytes[pos]!; pos += 1; break;
        case 0xc5: need(2, at); skip = view.getUint16(pos); pos += 2; break;
        case 0xc6: need(4, at); skip = view.getUint32(pos); pos += 4; break;
        case 0xc7: case 0xc8: case 0xc9: {
          const n = b === 0xc7 ? 1 : b === 0xc8 ? 2 : 4;
          need(n + 1, at);
          skip = n === 1 ? bytes[pos]! : n === 2 ? view.getUint16(pos) : view.getUint32(pos);
          pos += n;
          ext(view.getInt8(pos++), what, at);
          break;
        }
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
          need(1, at);
          ext(view.getInt8(pos++), what, at);
          skip = 1 << (b - 0xd4);
          break;
        case 0xd9: need(1, at); skip = bytes[pos]!; pos += 1; str = true; break;
        case 0xda: need(2, at); skip = view.getUint16(pos); pos += 2; str = true; break;
        case 0xdb: need(4, at); skip = view.getUint32(pos); pos += 4; str = true; break;
        case 0xdc: need(2, at); container = view.getUint16(pos); pos += 2; break;
        case 0xdd: need(4, at); container = view.getUint32(pos); pos += 4; break;
        case 0xde: need(2, at); container = view.getUint16(pos); pos += 2; map = true; break;
        case 0xdf: need(4, at); container = view.getUint32(pos); pos += 4; map = true; break;
      }
    }
    // mapsAsObjects turns keys into property names: only strings and integers make sense.
    const isInt = b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3);
    if (isKey && !str && !isInt) refuse(what, at, 'a map key must be a string or an integer');
    if (str && skip > limits.maxStringBytes) refuse(what, at, `a string of ${skip} bytes exceeds the limit of ${limits.maxStringBytes}`);
    if (skip > 0) {
      need(skip, at);
      pos += skip;
    }
    if (container < 0) continue;
    if (container > limits.maxItems) refuse(what, at, `a ${map ? 'map of' : 'list of'} ${container} ${map ? 'entries' : 'items'} exceeds the limit of ${limits.maxItems}`);
    // Every value takes at least one byte: a header announcing more than the rest is a lie.
    const count = map ? container * 2 : container;
    if (count > size - pos) refuse(what, at, 'truncated frame (a container announces more values than bytes left)');
    if (count === 0) continue;
    if (left.length + 1 > limits.maxDepth) refuse(what, at, `nesting deeper than ${limits.maxDepth}`);
    left.push(pending);
    isMap.push(inMap);
    pending = count;
    inMap = map;
  }
  if (pos !== size) refuse(what, pos, `${size - pos} trailing bytes after the value`);
}

function ext(type: number, what: string, at: number): void {
  if (!ACCEPTED_EXT_TYPES.has(type)) refuse(what, at, `msgpack extension type ${type} is not accepted`);
}
