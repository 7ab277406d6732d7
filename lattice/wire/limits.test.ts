import { describe, expect, it } from 'vitest';
import { decode, encode } from './codec.ts';
import { CONTROL_WIRE_LIMITS, DEFAULT_WIRE_LIMITS, scanMsgpack, type WireLimits } from './limits.ts';

const limits: WireLimits = { maxBytes: 4096, maxDepth: 4, maxItems: 8, maxValues: 64, maxStringBytes: 16 };
const scan = (value: unknown, l = limits) => () => scanMsgpack(value instanceof Uint8Array ? value : encode(value), l, 'req');
const code = (fn: () => void) => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
};

describe('msgpack pre-scan', () => {
  it('msgpack pre-scan - accepts every shape our encoder writes within the limits', () => {
    const values = [null, true, false, 0, -1, 127, -33, 255, 65_536, -70_000, 2 ** 40, -(2 ** 40), 1.5, 'x'.repeat(16), { bin: new Uint8Array(300) }, [], {}, [1, [2, [3]]], { a: { b: [1, 'two'] } }, { n: undefined }, { 7: 'int key' }];
    for (const value of values) expect(code(scan(value)), JSON.stringify(value)).toBe('ok');
    // A realistic control request passes the control limits and decodes to what was sent.
    const request = { lattice: 'l', actor: 'api', version: '1.0.0', digest: `sha256:${'a'.repeat(64)}`, policy: { allowedHosts: ['a.example', 'b.example'], maxMemoryPages: 16 } };
    expect(decode(encode(request), 'req', CONTROL_WIRE_LIMITS)).toEqual(request);
  });

  it('msgpack pre-scan - refuses nesting deeper than the limit, without recursion', () => {
    expect(code(scan([[[[1]]]]))).toBe('ok');
    expect(code(scan([[[[[1]]]]]))).toMatch(/^TRELLIS_BAD_REQUEST: req: nesting deeper than 4 \(at byte 4\)/);
    // 1 MB of one-element lists: msgpackr alone would overflow the stack.
    const deep = new Uint8Array(1_000_000).fill(0x91);
    deep[deep.length - 1] = 0xc0;
    expect(code(() => decode(deep, 'req'))).toMatch(/nesting deeper than 64/);
    // Deep maps too.
    const maps = new Uint8Array(3 * 1000 + 1);
    for (let i = 0; i < 1000; i++) maps.set([0x81, 0xa1, 0x6b], i * 3);
    maps[maps.length - 1] = 0xc0;
    expect(code(() => decode(maps, 'req'))).toMatch(/nesting deeper than 64/);
  });

  it('msgpack pre-scan - refuses lists, maps and strings over their limits, and frames over maxBytes', () => {
    expect(code(scan(Array.from({ length: 9 }, () => 0)))).toMatch(/a list of 9 items exceeds the limit of 8/);
    expect(code(scan(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, i]))))).toMatch(/a map of 9 entries exceeds the limit of 8/);
    expect(code(scan('y'.repeat(17)))).toMatch(/a string of 17 bytes exceeds the limit of 16/);
    expect(code(scan({ k: 'é'.repeat(9) }))).toMatch(/a string of 18 bytes/);
    expect(code(scan(new Uint8Array(5000)))).toMatch(/^TRELLIS_PAYLOAD_TOO_LARGE: req: 500\d bytes exceeds the limit of 4096/);
    // Many small values in allowed containers still hit the value budget.
    expect(code(scan(Array.from({ length: 8 }, () => [1, 2, 3, 4, 5, 6, 7, 8])))).toMatch(/more than 64 values/);
  });

  it('msgpack pre-scan - refuses headers that announce more than the frame holds', () => {
    // array32 of 2^32-1 items in 5 bytes: refused before anything is allocated.
    expect(code(scan(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]), DEFAULT_WIRE_LIMITS))).toMatch(/exceeds the limit|announces more values/);
    expect(code(scan(new Uint8Array([0xdd, 0x00, 0x00, 0x00, 0x03, 0x01]), DEFAULT_WIRE_LIMITS))).toMatch(/announces more values than bytes left/);
    expect(code(scan(new Uint8Array([0xdb, 0x7f, 0xff, 0xff, 0xff]), DEFAULT_WIRE_LIMITS))).toMatch(/exceeds the limit/);
    expect(code(scan(new Uint8Array([0xc6, 0x00, 0x00, 0x10, 0x00, 0x01]), DEFAULT_WIRE_LIMITS))).toMatch(/truncated frame/);
  });

  it('msgpack pre-scan - every truncation of a valid frame is refused, and trailing bytes too', () => {
    const frame = encode({ lattice: 'l', list: [1, 'two', new Uint8Array(3)], n: 1.25, big: 2 ** 40 });
    for (let cut = 0; cut < frame.length; cut++) expect(code(scan(frame.subarray(0, cut), DEFAULT_WIRE_LIMITS)), `cut at ${cut}`).toMatch(/TRELLIS_BAD_REQUEST: req: (truncated frame|empty body)/);
    const one = encode({ a: 1 });
    expect(code(scan(new Uint8Array([...one, 0x01])))).toBe(`TRELLIS_BAD_REQUEST: req: 1 trailing bytes after the value (at byte ${one.length})`);
  });

  it('msgpack pre-scan - refuses the reserved byte, foreign extensions and non-scalar map keys', () => {
    expect(code(scan(new Uint8Array([0x91, 0xc1])))).toMatch(/reserved byte 0xc1 \(at byte 1\)/);
    expect(code(scan(new Uint8Array([0xd4, 0x65, 0x00])))).toMatch(/extension type 101 is not accepted/);
    expect(code(scan(new Uint8Array([0xc7, 0x01, 0x78, 0x00])))).toMatch(/extension type 120/);
    // undefined (fixext1 type 0) is what our encoder writes for an undefined field.
    expect(code(scan(new Uint8Array([0xd4, 0x00, 0x00])))).toBe('ok');
    // A map whose key is a list, or nil.
    expect(code(scan(new Uint8Array([0x81, 0x90, 0x01])))).toMatch(/a map key must be a string or an integer \(at byte 1\)/);
    expect(code(scan(new Uint8Array([0x81, 0xc0, 0x01])))).toMatch(/a map key must be/);
    // Values of a map may be anything; keys of nested maps are checked too.
    expect(code(scan({ a: [null], b: { c: null } }))).toBe('ok');
    expect(code(scan(new Uint8Array([0x81, 0xa1, 0x61, 0x81, 0xc3, 0x01])))).toMatch(/a map key must be .* \(at byte 4\)/);
  });

  it('msgpack pre-scan - random bytes never crash it: it refuses or accepts, and accepted frames decode', () => {
    let seed = 12345;
    const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    for (let i = 0; i < 20_000; i++) {
      const bytes = Uint8Array.from({ length: 1 + (next() % 64) }, next);
      let scanned = true;
      try {
        scanMsgpack(bytes, DEFAULT_WIRE_LIMITS, 'req');
      } catch (err) {
        scanned = false;
        expect((err as { code: string }).code).toMatch(/^TRELLIS_(BAD_REQUEST|PAYLOAD_TOO_LARGE)$/);
      }
      // What the scan accepts, msgpackr decodes (the scan is never looser than the decoder).
      if (scanned) expect(() => decode(bytes, 'req')).not.toThrow();
    }
  });
});
