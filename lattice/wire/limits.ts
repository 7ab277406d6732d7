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

/** Deepest nesting any limits may allow (the scan's stacks are this deep). */
export const MAX_SCAN_DEPTH = 1024;
const LEFT = new Float64Array(MAX_SCAN_DEPTH);
const IS_MAP = new Uint8Array(MAX_SCAN_DEPTH);

/** msgpack extension types our encoder writes: 0 (undefined) and -1 (timestamp); any other is refused. */
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
  // Per open container: values still to read in it, and whether it is a map (keys at even
  // counts). Plain byte arithmetic and reused stacks (the scan is synchronous, so one pair
  // serves every call): this runs on every invocation.
  const maxDepth = Math.min(limits.maxDepth, MAX_SCAN_DEPTH);
  const left = LEFT;
  const isMap = IS_MAP;
  let depth = 0;
  let pending = 1; // values still to read at the current level (the root: one)
  let inMap = false;
  let values = 0;
  let pos = 0;
  for (;;) {
    if (pending === 0) {
      if (depth === 0) break;
      depth--;
      pending = left[depth]!;
      inMap = isMap[depth] === 1;
      continue;
    }
    // In a map, an even number of values left means the next one is a key.
    const isKey = inMap && (pending & 1) === 0;
    pending--;
    if (++values > limits.maxValues) refuse(what, pos, `more than ${limits.maxValues} values`);
    const at = pos;
    if (pos >= size) refuse(what, at, 'truncated frame');
    const b = bytes[pos++]!;
    let container = -1; // items of a list or map that starts here (maps: entries)
    let map = false;
    let skip = 0; // payload bytes to skip (strings, binaries, numbers, extensions)
    let str = false;
    let lengthBytes = 0; // bytes of a length that follows the type byte
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
        case 0xc4: lengthBytes = 1; break;
        case 0xc5: lengthBytes = 2; break;
        case 0xc6: lengthBytes = 4; break;
        case 0xc7: case 0xc8: case 0xc9: {
          const n = b === 0xc7 ? 1 : b === 0xc8 ? 2 : 4;
          if (pos + n + 1 > size) refuse(what, at, 'truncated frame');
          skip = readLength(bytes, pos, n);
          pos += n;
          ext(bytes[pos++]!, what, at);
          break;
        }
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
          if (pos >= size) refuse(what, at, 'truncated frame');
          ext(bytes[pos++]!, what, at);
          skip = 1 << (b - 0xd4);
          break;
        case 0xd9: lengthBytes = 1; str = true; break;
        case 0xda: lengthBytes = 2; str = true; break;
        case 0xdb: lengthBytes = 4; str = true; break;
        case 0xdc: lengthBytes = 2; container = 0; break;
        case 0xdd: lengthBytes = 4; container = 0; break;
        case 0xde: lengthBytes = 2; container = 0; map = true; break;
        case 0xdf: lengthBytes = 4; container = 0; map = true; break;
      }
      if (lengthBytes > 0) {
        if (pos + lengthBytes > size) refuse(what, at, 'truncated frame');
        const length = readLength(bytes, pos, lengthBytes);
        pos += lengthBytes;
        if (container === 0) container = length;
        else skip = length;
      }
    }
    // mapsAsObjects turns keys into property names: only strings and integers make sense.
    if (isKey && !str && !(b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))) refuse(what, at, 'a map key must be a string or an integer');
    if (str && skip > limits.maxStringBytes) refuse(what, at, `a string of ${skip} bytes exceeds the limit of ${limits.maxStringBytes}`);
    if (skip > 0) {
      if (pos + skip > size) refuse(what, at, 'truncated frame');
      pos += skip;
    }
    if (container <= 0) continue;
    if (container > limits.maxItems) refuse(what, at, `a ${map ? 'map of' : 'list of'} ${container} ${map ? 'entries' : 'items'} exceeds the limit of ${limits.maxItems}`);
    // Every value takes at least one byte: a header announcing more than the rest is a lie.
    const count = map ? container * 2 : container;
    if (count > size - pos) refuse(what, at, 'truncated frame (a container announces more values than bytes left)');
    if (depth >= maxDepth) refuse(what, at, `nesting deeper than ${maxDepth}`);
    left[depth] = pending;
    isMap[depth] = inMap ? 1 : 0;
    depth++;
    pending = count;
    inMap = map;
  }
  if (pos !== size) refuse(what, pos, `${size - pos} trailing bytes after the value`);
}

/** A big-endian unsigned length of 1, 2 or 4 bytes at `pos`. */
function readLength(bytes: Uint8Array, pos: number, n: number): number {
  if (n === 1) return bytes[pos]!;
  if (n === 2) return (bytes[pos]! << 8) | bytes[pos + 1]!;
  return bytes[pos]! * 0x1000000 + ((bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!);
}

/** Extension types travel as a signed byte. */
function ext(typeByte: number, what: string, at: number): void {
  const type = typeByte > 127 ? typeByte - 256 : typeByte;
  if (type !== 0 && type !== -1) refuse(what, at, `msgpack extension type ${type} is not accepted`);
}
