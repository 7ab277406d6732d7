/**
 * The memory cap on real modules, assembled here byte by byte: each exports `grow(pages)`, which
 * runs `memory.grow` and answers the old size in pages, or -1 when the engine refuses.
 */
import { describe, expect, it } from 'vitest';
import { capMemory } from './memlimit.ts';

const PAGE = 65536;

// The project's TS lib set has no WebAssembly declarations (see wasm-api.ts): type what is used.
interface Memory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
type Imports = Record<string, Record<string, unknown>>;
const WA = (globalThis as unknown as {
  WebAssembly: {
    Module: { new (bytes: Uint8Array): object; imports(m: object): { module: string; name: string; kind: string }[] };
    Instance: new (module: object, imports: Imports) => { exports: Record<string, unknown> };
    Memory: new (d: { initial: number; maximum?: number }) => Memory;
    Table: new (d: { initial: number; element: string }) => object;
    Global: new (d: { value: string; mutable: boolean }, v: number) => object;
    LinkError: new (...args: never[]) => Error;
  };
}).WebAssembly;

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
const name = (s: string) => [...leb(s.length), ...new TextEncoder().encode(s)];
const section = (id: number, ...items: number[][]) => [id, ...leb(items.flat().length), ...items.flat()];
const vec = (...items: number[][]) => [...leb(items.length), ...items.flat()];

/** Memory limits: `{ min, max?, shared? }` in pages. */
function limits(l: { min: number; max?: number; shared?: boolean }): number[] {
  const flags = (l.max === undefined ? 0 : 0x01) | (l.shared ? 0x02 : 0);
  return [flags, ...leb(l.min), ...(l.max === undefined ? [] : leb(l.max))];
}

const TYPE_I32_TO_I32 = section(1, vec([0x60, 1, 0x7f, 1, 0x7f]));
/** `grow` is function `index`, the module's memory is memory 0. */
const growExport = (index: number, exportMemory: boolean) =>
  section(7, exportMemory ? vec([...name('grow'), 0x00, index], [...name('mem'), 0x02, 0]) : vec([...name('grow'), 0x00, index]));
const GROW_CODE = section(10, vec([6, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b])); // local.get 0; memory.grow 0; end
const CUSTOM = section(0, name('trellis-test'), [1, 2, 3]);

const wasm = (...sections: number[][]) => Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()]);

/** A module defining its memory. */
const definesMemory = (l: Parameters<typeof limits>[0]) =>
  wasm(CUSTOM, TYPE_I32_TO_I32, section(3, vec([0])), section(5, vec(limits(l))), growExport(0, true), GROW_CODE, CUSTOM);

/**
 * A module importing its memory after a function, a table and a global (each import kind the
 * rewrite must step over), under a module name long enough that the import section's size
 * needs a two-byte LEB128.
 */
const MODULE = 'env'.repeat(50);
const importsMemory = (l: Parameters<typeof limits>[0], table: number[] = [0x70]) =>
  wasm(
    TYPE_I32_TO_I32,
    section(
      2,
      vec(
        [...name(MODULE), ...name('f'), 0x00, 0],
        [...name(MODULE), ...name('t'), 0x01, ...table, 0x00, 1],
        [...name(MODULE), ...name('g'), 0x03, 0x7f, 0x00],
        [...name(MODULE), ...name('memory'), 0x02, ...limits(l)],
      ),
    ),
    section(3, vec([0])),
    growExport(1, false),
    GROW_CODE,
  );

function grower(bytes: Uint8Array, imports: Imports = {}) {
  const instance = new WA.Instance(new WA.Module(bytes), imports);
  return instance.exports as { grow: (pages: number) => number; mem?: Memory };
}

function envWith(memory: Memory): Imports {
  return {
    [MODULE]: {
      f: () => 0,
      t: new WA.Table({ initial: 1, element: 'anyfunc' }),
      g: new WA.Global({ value: 'i32', mutable: false }, 0),
      memory,
    },
  };
}

describe('memory cap', () => {
  it('memory cap - a memory without a maximum gets the cap, and growing past it fails in the engine', () => {
    const original = definesMemory({ min: 1 });
    // Uncapped, the module may grow well past 4 pages.
    expect(grower(original).grow(8)).toBe(1);

    const capped = capMemory(original, 4);
    expect(capped).toEqual(definesMemory({ min: 1, max: 4 }));
    const m = grower(capped);
    expect(m.grow(3)).toBe(1);
    expect(m.mem!.buffer.byteLength).toBe(4 * PAGE);
    expect(m.grow(1)).toBe(-1);
    expect(() => m.mem!.grow(1)).toThrow(RangeError);
  });

  it('memory cap - a larger maximum is lowered to the cap, a smaller one is kept', () => {
    expect(capMemory(definesMemory({ min: 2, max: 1000 }), 8)).toEqual(definesMemory({ min: 2, max: 8 }));
    const lowered = grower(capMemory(definesMemory({ min: 2, max: 1000 }), 8));
    expect(lowered.grow(6)).toBe(2);
    expect(lowered.grow(1)).toBe(-1);

    expect(capMemory(definesMemory({ min: 1, max: 3 }), 8)).toEqual(definesMemory({ min: 1, max: 3 }));
    const kept = grower(capMemory(definesMemory({ min: 1, max: 3 }), 8));
    expect(kept.grow(2)).toBe(1);
    expect(kept.grow(1)).toBe(-1);
  });

  it('memory cap - multi-byte sizes and limits are re-encoded', () => {
    expect(capMemory(definesMemory({ min: 200 }), 65536)).toEqual(definesMemory({ min: 200, max: 65536 }));
    expect(capMemory(definesMemory({ min: 200, max: 300 }), 250)).toEqual(definesMemory({ min: 200, max: 250 }));
    const m = grower(capMemory(definesMemory({ min: 200, max: 300 }), 250));
    expect(m.grow(50)).toBe(200);
    expect(m.grow(1)).toBe(-1);
  });

  it('memory cap - an imported memory is capped too, stepping over the other imports', () => {
    const original = importsMemory({ min: 1 });
    // Uncapped, the module accepts a memory of any maximum.
    expect(grower(original, envWith(new WA.Memory({ initial: 1, maximum: 50 }))).grow(10)).toBe(1);

    const capped = capMemory(original, 4);
    expect(capped).toEqual(importsMemory({ min: 1, max: 4 }));
    expect(WA.Module.imports(new WA.Module(capped)).map((i) => `${i.name}:${i.kind}`)).toEqual(['f:function', 't:table', 'g:global', 'memory:memory']);
    // The host cannot hand it a memory that could grow past the cap.
    expect(() => grower(capped, envWith(new WA.Memory({ initial: 1, maximum: 5 })))).toThrow(WA.LinkError);
    const m = grower(capped, envWith(new WA.Memory({ initial: 1, maximum: 4 })));
    expect(m.grow(3)).toBe(1);
    expect(m.grow(1)).toBe(-1);
  });

  it('memory cap - a shared memory stays shared', () => {
    const capped = capMemory(definesMemory({ min: 1, max: 100, shared: true }), 10);
    expect(capped).toEqual(definesMemory({ min: 1, max: 10, shared: true }));
    const m = grower(capped);
    expect(m.mem!.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(m.grow(9)).toBe(1);
    expect(m.grow(1)).toBe(-1);
  });

  it('memory cap - a table of a typed reference (function-references encoding) is stepped over', () => {
    // (ref null func) is 0x63 then a heap type; V8 here may not validate it, so compare bytes.
    const table = [0x63, 0x70];
    expect(capMemory(importsMemory({ min: 1 }, table), 4)).toEqual(importsMemory({ min: 1, max: 4 }, table));
  });

  it('memory cap - a module needing more than the cap at start fails with TRELLIS_OUT_OF_MEMORY', () => {
    expect(() => capMemory(definesMemory({ min: 5 }), 4)).toThrow(
      expect.objectContaining({ code: 'TRELLIS_OUT_OF_MEMORY', message: 'out of memory: the module needs 5 pages at start, maxMemoryPages is 4' }),
    );
    expect(() => capMemory(importsMemory({ min: 5 }), 4)).toThrow(expect.objectContaining({ code: 'TRELLIS_OUT_OF_MEMORY' }));
  });

  it('memory cap - memory64 is refused', () => {
    const mem64 = wasm(section(5, vec([0x04, 1])));
    expect(() => capMemory(mem64, 4)).toThrow('memory64 is not supported');
  });
});
