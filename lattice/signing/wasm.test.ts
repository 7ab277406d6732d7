import { describe, expect, it } from 'vitest';
import { customPayload, customSection, readU32, replaceCustom, sections, withoutCustom, writeU32 } from './wasm.ts';

const CORE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const COMPONENT = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
/** A type section (id 1) with one `() -> ()` function type. */
const TYPE_SECTION = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00];
const bytes = (...parts: (number[] | Uint8Array)[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('signing - wasm sections', () => {
  it('wasm - LEB128 u32 round-trips at the edges and rejects overlong or oversized numbers', () => {
    for (const n of [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 21, 0xffff_ffff]) {
      const enc = writeU32(n);
      expect(readU32(enc, 0)).toEqual({ value: n, next: enc.length });
    }
    expect(writeU32(624485)).toEqual(Uint8Array.from([0xe5, 0x8e, 0x26]));
    expect(() => readU32(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x10]), 0)).toThrow(/larger than a u32/);
    expect(() => readU32(Uint8Array.from([0x80, 0x80]), 0)).toThrow(/past the end/);
  });

  it('wasm - walks the sections of a core module and of a component alike, naming custom ones', () => {
    for (const preamble of [CORE, COMPONENT]) {
      const b = bytes(preamble, TYPE_SECTION, customSection('name', Uint8Array.from([1, 2, 3])));
      const s = sections(b);
      expect(s.map((x) => [x.id, x.name])).toEqual([[1, undefined], [0, 'name']]);
      expect(s[0]).toMatchObject({ start: 8, payloadStart: 10, end: 14 });
      expect(s[1]!.end).toBe(b.length);
      expect([...customPayload(b, s[1]!)]).toEqual([1, 2, 3]);
    }
  });

  it('wasm - a custom section larger than 127 bytes gets a multi-byte size', () => {
    const payload = new Uint8Array(1000).fill(7);
    const b = bytes(CORE, customSection('big', payload));
    const [s] = sections(b);
    expect(s!.payloadStart - s!.start).toBe(3);
    expect(customPayload(b, s!)).toEqual(payload);
  });

  it('wasm - refuses a missing preamble, a section running past the end, and a name past its section', () => {
    expect(() => sections(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(/preamble/);
    expect(() => sections(bytes(CORE, [0x01, 0x10, 0x00]))).toThrow(/past the end/);
    expect(() => sections(bytes(CORE, [0x00, 0x02, 0x05, 0x61]))).toThrow(/name .* runs past/);
    expect(() => sections(bytes(CORE, [0x00, 0x02, 0x01, 0xff]))).toThrow(/not UTF-8/);
  });

  it('wasm - replacing a custom section drops every old copy wherever it was and appends one last', () => {
    const b = bytes(CORE, customSection('claims', Uint8Array.from([1])), TYPE_SECTION, customSection('claims', Uint8Array.from([2])), customSection('other', Uint8Array.from([9])));
    const out = replaceCustom(b, 'claims', new TextEncoder().encode('new'));
    const s = sections(out);
    expect(s.map((x) => x.name ?? x.id)).toEqual([1, 'other', 'claims']);
    expect(text(customPayload(out, s[2]!))).toBe('new');
    expect(withoutCustom(out, 'claims')).toEqual(bytes(CORE, TYPE_SECTION, customSection('other', Uint8Array.from([9]))));
    // Nothing to drop: the same bytes.
    expect(withoutCustom(b, 'absent')).toBe(b);
  });
});
