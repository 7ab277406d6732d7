/**
 * Rewrite the memory limits of a core Wasm module so every linear memory (defined or imported)
 * has a maximum of at most `maxPages`. Worker `resourceLimits` do not cover Wasm memory, so the
 * cap has to be in the binary: `memory.grow` past it then fails inside the engine.
 */
import { TrellisError } from '../../lattice/errors/index.ts';

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, pos = 0) {
    this.pos = pos;
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw new Error('unexpected end of module');
    return this.buf[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new Error('LEB128 too long');
    }
  }
  skip(n: number): void {
    this.pos += n;
  }
  name(): void {
    this.skip(this.u32());
  }
}

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

/** Read limits at r.pos, return the clamped encoding. */
function clampLimits(r: Reader, maxPages: number): number[] {
  const flags = r.byte();
  if (flags & 0x04) throw new Error('memory64 is not supported');
  const min = r.u32();
  const max = flags & 0x01 ? r.u32() : undefined;
  if (min > maxPages) {
    throw new TrellisError('TRELLIS_OUT_OF_MEMORY', `out of memory: the module needs ${min} pages at start, maxMemoryPages is ${maxPages}`);
  }
  const shared = flags & 0x02;
  return [0x01 | shared, ...leb(min), ...leb(Math.min(max ?? maxPages, maxPages))];
}

function skipRefType(r: Reader): void {
  const t = r.byte();
  // (ref null? ht) in the function-references/GC encoding carries a heap type after it.
  if (t === 0x63 || t === 0x64) r.u32();
}

function skipLimits(r: Reader): void {
  const flags = r.byte();
  r.u32();
  if (flags & 0x01) r.u32();
}

function rewriteImports(body: Uint8Array, maxPages: number): number[] {
  const r = new Reader(body);
  const count = r.u32();
  const out: number[] = [...leb(count)];
  for (let i = 0; i < count; i++) {
    const start = r.pos;
    r.name();
    r.name();
    const kind = r.byte();
    if (kind === 0x02) {
      out.push(...body.subarray(start, r.pos));
      out.push(...clampLimits(r, maxPages));
      continue;
    }
    if (kind === 0x00) r.u32();
    else if (kind === 0x01) {
      skipRefType(r);
      skipLimits(r);
    } else if (kind === 0x03) {
      skipRefType(r);
      r.byte();
    } else if (kind === 0x04) {
      r.byte();
      r.u32();
    } else throw new Error(`unknown import kind ${kind}`);
    out.push(...body.subarray(start, r.pos));
  }
  return out;
}

function rewriteMemories(body: Uint8Array, maxPages: number): number[] {
  const r = new Reader(body);
  const count = r.u32();
  const out: number[] = [...leb(count)];
  for (let i = 0; i < count; i++) out.push(...clampLimits(r, maxPages));
  return out;
}

/** Return a copy of the core module `wasm` whose memories are capped at `maxPages`. */
export function capMemory(wasm: Uint8Array, maxPages: number): Uint8Array {
  const r = new Reader(wasm, 8);
  const parts: Uint8Array[] = [wasm.subarray(0, 8)];
  while (r.pos < wasm.length) {
    const sectionStart = r.pos;
    const id = r.byte();
    const size = r.u32();
    const bodyStart = r.pos;
    r.skip(size);
    const body = wasm.subarray(bodyStart, bodyStart + size);
    if (id === 2 || id === 5) {
      const rewritten = id === 2 ? rewriteImports(body, maxPages) : rewriteMemories(body, maxPages);
      parts.push(Uint8Array.from([id, ...leb(rewritten.length)]), Uint8Array.from(rewritten));
    } else {
      parts.push(wasm.subarray(sectionStart, bodyStart + size));
    }
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
