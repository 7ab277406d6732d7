/**
 * The actor build pipeline: `buildActor` turns one JS/TS or C entry into a WebAssembly component
 * (what `trellis build` runs), `buildExampleActors` builds the example actors into a cache for
 * tests and the bench.
 *
 * JS/TS: esbuild bundles the entry (stripping types, reporting syntax errors with positions),
 * then componentize-js (SpiderMonkey) makes the component. C: clang compiles a freestanding
 * wasm32 core module, then jco embeds the WIT and makes the component. The component steps run
 * in a child process (see worker.ts).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { TrellisError } from '../../lattice/errors/index.ts';
import { bundled, packagePath, packageRoot } from '../../lattice/package-root/index.ts';
import { assembleWit, witDir, type WitRoot } from './wit.ts';
import type { WorkerJob } from './worker.ts';


/** Options of one build. */
export interface BuildActorOptions {
  /** The entry: a `.js`, `.mjs`, `.ts`, `.mts` module or a `.c` file. */
  entry: string;
  /** Where to write the component. */
  out: string;
  /**
   * The world to target. Default: for JS/TS, `actor` when the entry exports `handler` and
   * `proxy` (wasi:http/proxy) otherwise; for C, `actor`. With `witPath`, a world of that package.
   */
  world?: string;
  /** A WIT file or dir to use instead of trellis:actor (trellis:actor and WASI are available as deps). */
  witPath?: string;
}

/** What a build produced. */
export interface BuildResult {
  out: string;
  bytes: number;
  ms: number;
}

const actorsDir = packagePath('actors');
const repoRoot = packageRoot;
const buildDir = packagePath('actors', 'build');
const cAbiDir = join(actorsDir, 'c-abi');
const JS_EXTENSIONS = new Set(['.js', '.mjs', '.ts', '.mts']);
const TRELLIS_WORLDS = new Set(['actor', 'minimal']);
const WASI_HTTP_WORLDS = new Set(['proxy', 'wasi:http/proxy']);

const badRequest = (message: string, cause?: unknown) =>
  new TrellisError('TRELLIS_BAD_REQUEST', message, cause === undefined ? undefined : { cause });

/** Build one actor into a component at `options.out`. */
export async function buildActor(options: BuildActorOptions): Promise<BuildResult> {
  const started = performance.now();
  const entry = resolve(options.entry);
  const out = resolve(options.out);
  const ext = extname(entry);
  if (ext !== '.c' && !JS_EXTENSIONS.has(ext)) {
    throw badRequest(`cannot build ${options.entry}: the entry must be .js, .mjs, .ts, .mts or .c`);
  }
  try {
    if (!(await stat(entry)).isFile()) throw badRequest(`cannot build ${options.entry}: not a file`);
  } catch (err) {
    if (err instanceof TrellisError) throw err;
    throw badRequest(`cannot build ${options.entry}: no such file`, err);
  }
  if (options.witPath !== undefined) {
    await access(options.witPath).catch((err) => {
      throw badRequest(`cannot build ${options.entry}: WIT path ${options.witPath} does not exist`, err);
    });
  }
  const work = await mkdtemp(join(tmpdir(), 'trellis-build-'));
  try {
    const job = ext === '.c' ? await compileC(entry, options, work) : await bundleJs(entry, options, work);
    await mkdir(dirname(out), { recursive: true });
    await runWorker({ ...job, out }, options.entry);
    const bytes = (await stat(out)).size;
    return { out, bytes, ms: Math.round(performance.now() - started) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A worker job before its output path is known (distributes over the job kinds). */
type JobWithoutOut = WorkerJob extends infer Job ? (Job extends WorkerJob ? Omit<Job, 'out'> : never) : never;

/** Pick the WIT root and world name for a build. */
async function resolveWorld(options: BuildActorOptions, work: string, defaultWorld: string): Promise<{ witDir: string; world?: string }> {
  let root: WitRoot;
  let worldName = options.world;
  const world = options.world ?? defaultWorld;
  if (options.witPath !== undefined) {
    // The user's package: without a world name, wasm-tools picks its only world.
    root = { path: resolve(options.witPath) };
  } else if (TRELLIS_WORLDS.has(world)) {
    worldName = world;
    root = { path: witDir };
  } else if (WASI_HTTP_WORLDS.has(world)) {
    root = { wasiHttp: true };
    worldName = 'proxy';
  } else {
    throw badRequest(`unknown world ${world}: use actor, minimal or proxy (wasi:http/proxy), or pass a WIT path`);
  }
  const dir = join(work, 'wit');
  await assembleWit(root, dir);
  return { witDir: dir, world: worldName };
}

/** Bundle a JS/TS entry into one ES module (componentize-js takes a single file). */
async function bundleJs(entry: string, options: BuildActorOptions, work: string): Promise<JobWithoutOut> {
  const { build } = await import('esbuild');
  const source = join(work, 'actor.js');
  let exports: string[];
  try {
    const result = await build({
      entryPoints: [entry],
      outfile: source,
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      target: 'es2022',
      // Interface imports are bound by componentize-js, not bundled.
      external: ['trellis:*', 'wasi:*'],
      metafile: true,
      logLevel: 'silent',
    });
    exports = Object.values(result.metafile.outputs)[0]?.exports ?? [];
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors;
    const detail = errors?.length
      ? errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text)).join('\n')
      : String(err);
    throw badRequest(`cannot build ${options.entry}:\n${detail}`, err);
  }
  const defaultWorld = exports.includes('handler') ? 'actor' : 'proxy';
  const resolved = await resolveWorld(options, work, defaultWorld);
  // Actors of our worlds get no ambient WASI (no clocks, random, stdio or fetch): all they can
  // touch is in their world, which is what the host sandboxes. wasi:http components keep the
  // engine's defaults, which their fetch machinery needs.
  return { kind: 'js', source, pure: resolved.world !== 'proxy', ...resolved };
}

/** The flags of every C actor: freestanding wasm32, exports come from `export_name` attributes. */
const CLANG_FLAGS = ['--target=wasm32', '-nostdlib', '-O2', '-Wall', '-Wl,--no-entry', '-Wl,--strip-all'];

/** Compile a C entry into a core module with clang. */
async function compileC(entry: string, options: BuildActorOptions, work: string): Promise<JobWithoutOut> {
  const source = join(work, 'actor.core.wasm');
  const { code, stderr } = await run('clang', [...CLANG_FLAGS, `-I${cAbiDir}`, '-o', source, entry]);
  if (code !== 0) throw badRequest(`cannot build ${options.entry}: clang failed:\n${stderr.trim()}`);
  return { kind: 'core', source, ...(await resolveWorld(options, work, 'actor')) };
}

/** Run a tool, collecting stderr; a missing tool is an install problem, not a bad request. */
function run(command: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: repoRoot });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (err: NodeJS.ErrnoException) => {
      const hint = command === 'clang' ? ' (Debian: apt-get install clang lld)' : '';
      reject(new TrellisError('TRELLIS_INTERNAL', `cannot run ${command}${hint}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stderr }));
  });
}

/** Run the component step in a child process (see worker.ts for why). */
async function runWorker(job: WorkerJob, entry: string): Promise<void> {
  // From dist/ the worker is prebuilt plain JS; from sources it needs the TypeScript loader.
  const worker = bundled ? [packagePath('dist', 'actor-build-worker.js')] : ['--import', 'tsx', join(buildDir, 'worker.ts')];
  const { code, stderr } = await run(process.execPath, [...worker, JSON.stringify(job)]);
  if (code !== 0) {
    throw badRequest(`cannot build ${entry}: ${job.kind === 'js' ? 'componentize-js' : 'jco component new'} failed:\n${stderr.trim()}`);
  }
}

/** The example actors: name, entry (relative to actors/), world. */
export const exampleActors = {
  hello: { entry: 'hello/hello.js', world: 'actor' },
  counter: { entry: 'counter/counter.js', world: 'actor' },
  'echo-c': { entry: 'echo-c/echo.c', world: 'actor' },
  'http-js': { entry: 'http-js/http.js', world: 'proxy' },
  'hostile-js': { entry: 'hostile-js/hostile.js', world: 'hostile', witPath: 'hostile-js/wit' },
  'hostile-c': { entry: 'hostile-c/hostile.c', world: 'actor' },
  'flaky-c': { entry: 'flaky-c/flaky.c', world: 'actor' },
  'slow-c': { entry: 'slow-c/slow.c', world: 'actor' },
} as const satisfies Record<string, { entry: string; world: string; witPath?: string }>;

/** Names of the example actors. */
export type ExampleActorName = keyof typeof exampleActors;

/** Names of the example actors, in build order. */
export const exampleActorNames = Object.keys(exampleActors) as ExampleActorName[];

/** Options of `buildExampleActors`. */
export interface BuildExamplesOptions {
  /** Where components and their cache keys go. Default: `<repo>/.cache/actors`. */
  cacheDir?: string;
  /** Progress lines (what was built or reused, sizes, times). */
  log?: (line: string) => void;
  /** Build only these (e.g. the demo's JS actors, which need no C toolchain). Default: all. */
  only?: ExampleActorName[];
}

/**
 * Build every example actor into `<cacheDir>/<name>.wasm`, skipping those whose sources,
 * build scripts and toolchain are unchanged; returns name -> absolute path.
 */
export async function buildExampleActors(options: BuildExamplesOptions = {}): Promise<Record<ExampleActorName, string>> {
  const cacheDir = resolve(options.cacheDir ?? join(repoRoot, '.cache', 'actors'));
  const log = options.log ?? (() => {});
  await mkdir(cacheDir, { recursive: true });
  const toolchain = await toolchainVersions();
  const common = await hashFiles([...(await listFiles(buildDir)), ...(await listFiles(witDir))]);
  const names = options.only ?? exampleActorNames;
  const tasks = names.map((name) => async () => {
    const spec: { entry: string; world: string; witPath?: string } = exampleActors[name];
    const entry = join(actorsDir, spec.entry);
    const sources = await listFiles(dirname(entry));
    if (entry.endsWith('.c')) sources.push(...(await listFiles(cAbiDir)));
    const key = createHash('sha256')
      .update(common)
      .update(await hashFiles(sources))
      .update(JSON.stringify({ spec, toolchain: entry.endsWith('.c') ? toolchain : { ...toolchain, clang: '' } }))
      .digest('hex');
    const out = join(cacheDir, `${name}.wasm`);
    const keyFile = join(cacheDir, `${name}.key`);
    const cachedKey = await readFile(keyFile, 'utf8').catch(() => '');
    const cachedSize = await stat(out).then((s) => s.size, () => 0);
    if (cachedKey === key && cachedSize > 0) {
      log(`${name}: cached ${formatBytes(cachedSize)}`);
    } else {
      const result = await buildActor({
        entry,
        out,
        world: spec.world,
        ...(spec.witPath ? { witPath: join(actorsDir, spec.witPath) } : {}),
      });
      await writeFile(keyFile, key);
      log(`${name}: built ${formatBytes(result.bytes)} in ${(result.ms / 1000).toFixed(1)}s`);
    }
  });
  await runLimited(tasks, Math.max(1, availableParallelism()));
  return Object.fromEntries(names.map((name) => [name, join(cacheDir, `${name}.wasm`)])) as Record<ExampleActorName, string>;
}

/** Run async tasks with at most `limit` in flight; fails with the first error once all settle. */
async function runLimited(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  const queue = [...tasks];
  const errors: unknown[] = [];
  const lane = async () => {
    for (let task = queue.shift(); task; task = queue.shift()) await task().catch((err) => errors.push(err));
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  if (errors.length > 0) throw errors[0];
}

/** Versions of every tool whose output ends up in a component (part of the cache key). */
async function toolchainVersions(): Promise<Record<string, string>> {
  // Not every package exports its package.json (or a require entry), so look it up the way
  // Node finds package folders: node_modules/<pkg> in this folder or any parent.
  const version = async (pkg: string) => {
    for (let dir = actorsDir; dir !== dirname(dir); dir = dirname(dir)) {
      const manifest = await readFile(join(dir, 'node_modules', pkg, 'package.json'), 'utf8').catch(() => undefined);
      if (manifest !== undefined) return (JSON.parse(manifest) as { version: string }).version;
    }
    return 'missing';
  };
  let clang = 'missing';
  try {
    const child = spawn('clang', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    clang = await new Promise<string>((ok) => {
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      child.on('error', () => ok('missing'));
      child.on('close', () => ok(text.split('\n')[0] ?? 'unknown'));
    });
  } catch {
    // Reported properly by the C build itself; here it only feeds the cache key.
  }
  return {
    componentizeJs: await version('@bytecodealliance/componentize-js'),
    jco: await version('@bytecodealliance/jco'),
    esbuild: await version('esbuild'),
    clang,
  };
}

/** Every file under `dir`, recursively, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** One digest over file names (relative to actors/) and contents. */
async function hashFiles(files: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(relative(actorsDir, file)).update('\0').update(await readFile(file)).update('\0');
  }
  return hash.digest('hex');
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}
