/**
 * The Wasm binary layout signing needs, and nothing more: the 8-byte preamble, then sections of
 * (id byte, LEB128 u32 size, payload). Core modules and components share it (they differ in the
 * version/layer word of the preamble and in which ids they use), and custom sections (id 0, a
 * LEB128-length UTF-8 name then free bytes) are allowed anywhere in both, which is where claims
 * go. Only the top level is walked: sections nested in a component are part of a payload.
 */
import { TrellisError } from '../errors/index.ts';

/** `\0asm`. */
const MAGIC = [0x00, 0x61, 0x73, 0x6d] as const;
const CUSTOM = 0;

/** One top-level section: where it starts (its id byte), where its payload lies, where it ends. */
export interface Section {
  id: number;
  /** Offset of the id byte. */
  start: number;
  /** Offset of the payload (after the size). */
  payloadStart: number;
  /** Offset just after the section. */
  end: number;
  /** The name of a custom section (id 0). */
  name?: string;
}

function malformed(what: string): never {
  throw new TrellisError('TRELLIS_BAD_REQUEST', `not a valid WebAssembly binary: ${what}`);
}

/** Read an unsigned LEB128 u32 at `offset`; returns the value and the offset after it. */
export function readU32(bytes: Uint8Array, offset: number): { value: number; next: number } {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    const at = offset + i;
    if (at >= bytes.length) malformed(`LEB128 number at ${offset} runs past the end`);
    const byte = bytes[at]!;
    // The fifth byte may carry only the top 4 bits of a u32.
    if (i === 4 && byte > 0x0f) malformed(`LEB128 number at ${offset} is larger than a u32`);
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { value, next: at + 1 };
  }
  return malformed(`LEB128 number at ${offset} is longer than 5 bytes`);
}

/** Encode an unsigned LEB128 u32. */
export function writeU32(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`not a u32: ${value}`);
  const out: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return Uint8Array.from(out);
}

/** Is this the preamble of a core module or a component (any version)? */
export function hasWasmPreamble(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * The top-level sections of a module or component, in order. Throws TRELLIS_BAD_REQUEST on a
 * bad preamble, a size that runs past the end, or a custom section name that is not UTF-8.
 */
export function sections(bytes: Uint8Array): Section[] {
  if (!hasWasmPreamble(bytes)) malformed('no \\0asm preamble');
  const out: Section[] = [];
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let offset = 8;
  while (offset < bytes.length) {
    const start = offset;
    const id = bytes[offset]!;
    const size = readU32(bytes, offset + 1);
    const end = size.next + size.value;
    if (end > bytes.length) malformed(`section ${id} at ${start} is ${size.value} bytes, past the end of the file`);
    const section: Section = { id, start, payloadStart: size.next, end };
    if (id === CUSTOM) {
      const len = readU32(bytes, size.next);
      if (len.next + len.value > end) malformed(`custom section name at ${start} runs past its section`);
      try {
        section.name = utf8.decode(bytes.subarray(len.next, len.next + len.value));
      } catch {
        malformed(`custom section name at ${start} is not UTF-8`);
      }
    }
    out.push(section);
    offset = end;
  }
  return out;
}

/** The payload of a custom section (after its name). */
export function customPayload(bytes: Uint8Array, section: Section): Uint8Array {
  const len = readU32(bytes, section.payloadStart);
  return bytes.subarray(len.next + len.value, section.end);
}

/** The bytes of a custom section named `name` holding `payload`. */
export function customSection(name: string, payload: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const nameLen = writeU32(nameBytes.length);
  const body = nameLen.length + nameBytes.length + payload.length;
  const size = writeU32(body);
  const out = new Uint8Array(1 + size.length + body);
  let o = 0;
  out[o++] = CUSTOM;
  out.set(size, o);
  o += size.length;
  out.set(nameLen, o);
  o += nameLen.length;
  out.set(nameBytes, o);
  o += nameBytes.length;
  out.set(payload, o);
  return out;
}

/** `bytes` without the custom sections named `name` (the other sections untouched, in order). */
export function withoutCustom(bytes: Uint8Array, name: string): Uint8Array {
  const drop = sections(bytes).filter((s) => s.id === CUSTOM && s.name === name);
  if (drop.length === 0) return bytes;
  const out = new Uint8Array(bytes.length - drop.reduce((n, s) => n + (s.end - s.start), 0));
  let from = 0;
  let o = 0;
  for (const s of drop) {
    out.set(bytes.subarray(from, s.start), o);
    o += s.start - from;
    from = s.end;
  }
  out.set(bytes.subarray(from), o);
  return out;
}

/** `bytes` with every custom section `name` replaced by one holding `payload`, appended last. */
export function replaceCustom(bytes: Uint8Array, name: string, payload: Uint8Array): Uint8Array {
  const rest = withoutCustom(bytes, name);
  const section = customSection(name, payload);
  const out = new Uint8Array(rest.length + section.length);
  out.set(rest, 0);
  out.set(section, rest.length);
  return out;
}
