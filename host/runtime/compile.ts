/**
 * From component bytes to what a worker needs to instantiate it: validation, jco transpilation
 * (cached by sha256 in memory and on disk) and core module compilation with the memory cap
 * written into the binary (cached in memory per digest and cap).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { TrellisError } from '../../lattice/errors/index.ts';
import { capMemory } from './memlimit.ts';
import { Wasm, type WasmModule } from './wasm-api.ts';

export type World = 'trellis:actor' | 'wasi:http/proxy';

/** Where a transpiled component came from on this load. */
export type CacheSource = 'transpiled' | 'memory' | 'disk';

/** A transpiled component as stored in the cache directory. */
export interface Transpiled {
  digest: string;
  world: World;
  /** file: URL of the instantiation module jco generated. */
  jsUrl: string;
  /** Core module file names in the order jco asks for them, with their bytes. */
  cores: Map<string, Uint8Array>;
  transpileMs: number;
}

interface Meta {
  world: World;
  cores: string[];
  transpileMs: number;
}

const MAGIC = [0x00, 0x61, 0x73, 0x6d];

function loadFailed(reason: string, cause?: unknown): TrellisError {
  return new TrellisError('TRELLIS_LOAD_FAILED', `failed to load module: ${reason}`, { cause });
}

/** Check the preamble: Wasm magic, then the component encoding (version 0x0d, layer 1). */
export function validateComponent(bytes: Uint8Array): void {
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) throw loadFailed('not a WebAssembly binary (bad magic)');
  const version = bytes[4]! | (bytes[5]! << 8);
  const layer = bytes[6]! | (bytes[7]! << 8);
  if (layer === 0 && version === 1) throw loadFailed('a core module, not a component');
  if (layer !== 1) throw loadFailed(`unknown binary layer ${layer}`);
  if (version !== 0x0d) throw loadFailed(`unsupported component encoding version 0x${version.toString(16)}`);
}

function worldOf(exports: [string, string][]): World {
  const names = exports.map(([n]) => n);
  if (names.some((n) => n.startsWith('wasi:http/incoming-handler@0.2.'))) return 'wasi:http/proxy';
  if (names.some((n) => n.startsWith('trellis:actor/handler@'))) return 'trellis:actor';
  throw loadFailed(`the component exports neither trellis:actor/handler nor wasi:http/incoming-handler (exports: ${names.join(', ') || 'none'})`);
}

/**
 * Version of what we do to jco's output; part of the disk cache path, so a change here never
 * reuses glue cached by an older host.
 */
const GLUE_FORMAT = 'g2';

/**
 * jco's generated glue calls a debug logger that reads `process.env.JCO_DEBUG` several times per
 * call (a C++ round trip each, ~1-3 µs per guest call in our measurements). Actors never need it:
 * it becomes a no-op V8 inlines away. Left untouched if a jco version generates something else.
 */
export function stripDebugLog(js: string): string {
  return js.replace(/const _debugLog = \(\.\.\.args\) => \{\s*if \(!globalThis\?\.process\?\.env\?\.JCO_DEBUG\) \{ return; \}\s*console\.debug\(\.\.\.args\);\s*\};/, 'const _debugLog = () => {};');
}

type JcoOutput = { files: Record<string, Uint8Array>; exports: [string, string][] };

/**
 * jco's transpiler holds about 40 MB once imported, and a transpile as much again: it runs in a
 * short-lived worker thread, so a host gives that memory back once a new component is cached
 * (and one that only loads cached components never imports jco at all).
 */
async function transpileIsolated(bytes: Uint8Array): Promise<JcoOutput> {
  // instantiation 'async' makes the generated code take every import from us: nothing falls
  // back to preview2-shim (which would expose the host env and file system).
  const options = { name: 'component', instantiation: 'async', noTypescript: true, quiet: true, base64Cutoff: 0 };
  const source = `const { parentPort, workerData } = require('node:worker_threads');
import(workerData.jco).then(({ transpile }) => transpile(workerData.bytes, workerData.options)).then(
  (out) => parentPort.postMessage({ ok: true, files: out.files, exports: out.exports }),
  (err) => parentPort.postMessage({ ok: false, message: String((err && err.message) || err) }));`;
  const worker = new Worker(source, { eval: true, env: {}, workerData: { jco: pathToFileURL(createRequire(import.meta.url).resolve('@bytecodealliance/jco')).href, bytes, options } });
  try {
    const reply = await new Promise<{ ok: true; files: Record<string, Uint8Array>; exports: [string, string][] } | { ok: false; message: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`transpiler exited with code ${code}`)));
    });
    if (!reply.ok) throw new Error(reply.message);
    return { files: reply.files, exports: reply.exports };
  } finally {
    void worker.terminate();
  }
}

/** Transpiles and compiles components, caching both. One per runtime. */
export class ComponentCache {
  readonly #dir: string;
  readonly #transpiled = new Map<string, Promise<Transpiled>>();
  readonly #compiled = new Map<string, Promise<Map<string, WasmModule>>>();
  /** Transpilations actually run (cache misses), for tests and stats. */
  transpiles = 0;

  constructor(cacheDir: string) {
    this.#dir = cacheDir;
  }

  /** The transpiled component for `bytes`, from memory, disk or a fresh transpile. */
  async transpiled(bytes: Uint8Array): Promise<{ component: Transpiled; source: CacheSource }> {
    validateComponent(bytes);
    const digest = createHash('sha256').update(bytes).digest('hex');
    const cached = this.#transpiled.get(digest);
    if (cached) return { component: await cached, source: 'memory' };
    let source: CacheSource = 'disk';
    const pending = this.#fromDisk(digest).then((hit) => {
      if (hit) return hit;
      source = 'transpiled';
      return this.#transpile(digest, bytes);
    });
    this.#transpiled.set(digest, pending);
    pending.catch(() => this.#transpiled.delete(digest));
    return { component: await pending, source };
  }

  /** Core modules of `component` compiled with every memory capped at `maxPages`. */
  compiled(component: Transpiled, maxPages: number): Promise<Map<string, WasmModule>> {
    const key = `${component.digest}:${maxPages}`;
    let hit = this.#compiled.get(key);
    if (!hit) {
      hit = (async () => {
        const out = new Map<string, WasmModule>();
        for (const [name, wasm] of component.cores) {
          try {
            out.set(name, await Wasm.compile(capMemory(wasm, maxPages)));
          } catch (err) {
            if (err instanceof TrellisError) throw err;
            throw loadFailed(`core module ${name}: ${(err as Error).message}`, err);
          }
        }
        return out;
      })();
      this.#compiled.set(key, hit);
      hit.catch(() => this.#compiled.delete(key));
    }
    return hit;
  }

  async #fromDisk(digest: string): Promise<Transpiled | undefined> {
    const dir = join(this.#dir, `${GLUE_FORMAT}-${digest}`);
    let meta: Meta;
    try {
      meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Meta;
    } catch {
      return undefined;
    }
    const cores = new Map<string, Uint8Array>();
    for (const name of meta.cores) cores.set(name, await readFile(join(dir, name)));
    return { digest, world: meta.world, jsUrl: pathToFileURL(join(dir, 'component.js')).href, cores, transpileMs: meta.transpileMs };
  }

  async #transpile(digest: string, bytes: Uint8Array): Promise<Transpiled> {
    const started = performance.now();
    let out: JcoOutput;
    try {
      out = await transpileIsolated(bytes);
    } catch (err) {
      throw loadFailed((err as Error).message.split('\n').filter(Boolean).slice(0, 3).join(': '), err);
    }
    this.transpiles++;
    const world = worldOf(out.exports);
    const transpileMs = performance.now() - started;
    const coreNames = Object.keys(out.files).filter((f) => f.endsWith('.wasm'));
    const dir = join(this.#dir, `${GLUE_FORMAT}-${digest}`);
    // Write to a private folder then rename, so a concurrent reader never sees half a cache entry.
    const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, 'component.js'), stripDebugLog(new TextDecoder().decode(out.files['component.js']!)));
    for (const name of coreNames) await writeFile(join(tmp, name), out.files[name]!);
    const meta: Meta = { world, cores: coreNames, transpileMs };
    await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
    try {
      await rename(tmp, dir);
    } catch {
      await rm(tmp, { recursive: true, force: true }); // another process won the race: use theirs
    }
    const cores = new Map(coreNames.map((n) => [n, out.files[n]!] as const));
    return { digest, world, jsUrl: pathToFileURL(join(dir, 'component.js')).href, cores, transpileMs };
  }
}
