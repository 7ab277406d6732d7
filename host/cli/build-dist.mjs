#!/usr/bin/env node
// Builds dist/, the compiled JavaScript the `trellis` bin runs so that no start pays for
// transpiling TypeScript (tsx stays for development: the bin falls back to it whenever dist/ is
// not current, see dist.mjs).
//
//   dist/cli.js                 host/cli/index.ts: the whole CLI, with the long-running participants
//   dist/actor-build-worker.js  actors/build/worker.ts, the per-step process of `trellis build`
//   dist/chunk-*.js             code shared by those, split so each command loads only what it imports
//   dist/actor-worker.js        host/runtime/worker.ts, the actor worker thread, one self-contained file
//                               (built by worker-script.ts per process when running from sources)
//   dist/inputs.json            what it was built from, written last
//
// Dependencies stay in node_modules, loaded when a command imports them (but see INLINED below).
// Usage: node host/cli/build-dist.mjs [--force]   (a no-op when dist/ is current)
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STAMP_VERSION, distDir, fileStamp, inputsFile, packageRoot, staleReason } from './dist.mjs';

/** A source saved during a build makes it build again, this many times at most. */
const MAX_ATTEMPTS = 3;
/** Old chunks are kept this long, so a process started from the previous build can still import them. */
const OLD_OUTPUT_GRACE_MS = 60 * 60 * 1000;

// Dependencies load from node_modules when a command imports them, except the two every lattice
// command needs: nats.js and msgpackr are CommonJS spread over ~60 files, and resolving and
// loading those one by one costs about twice as long as parsing them inlined in a chunk.
const INLINED = new Set(['nats', 'msgpackr']);
const { dependencies = {}, devDependencies = {} } = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8'));
const EXTERNAL = Object.keys({ ...dependencies, ...devDependencies })
  .filter((name) => !INLINED.has(name))
  .flatMap((name) => [name, `${name}/*`])
  // msgpackr's optional native string decoder finds its binary relative to its own files.
  .concat('msgpackr-extract');
// Only static imports are inlined. esbuild gives a dynamic import() of inlined CommonJS, when it
// becomes its own chunk, nothing but a default export (`const { nkeys } = await import('nats')`
// would read undefined), so those load from node_modules, with Node's own named-export detection.
const dynamicImportsFromNodeModules = {
  name: 'dynamic-imports-from-node-modules',
  setup(build) {
    build.onResolve({ filter: new RegExp(`^(${[...INLINED].join('|')})(/.*)?$`) }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined));
  },
};
// Inlined CommonJS require()s Node built-ins, which an ESM file can only do through a real require.
const REQUIRE_BANNER = { js: "import { createRequire as __trellisCreateRequire } from 'node:module'; const require = __trellisCreateRequire(import.meta.url);" };

// The package-root module (lattice/package-root) resolves resources from dist/ when this is set.
const define = { TRELLIS_BUNDLED: 'true' };

/** Build dist/ unless it is current (or `force`); returns what happened, for the caller to print. */
export async function buildDist({ force = false } = {}) {
  const reason = staleReason();
  if (!force && reason === undefined) return { built: false };
  const started = performance.now();
  const { build } = await import('esbuild');
  const { tsImport } = await import('tsx/esm/api');
  // The worker bundle's options live with the code that builds it at run time from sources.
  const { workerBuildOptions, prebuiltWorker } = await tsImport('../runtime/worker-script.ts', import.meta.url);

  for (let attempt = 1; ; attempt++) {
    const since = Date.now();
    const [cli, worker] = await Promise.all([
      build({
        absWorkingDir: packageRoot,
        entryPoints: { cli: 'host/cli/index.ts', 'actor-build-worker': 'actors/build/worker.ts' },
        outdir: distDir,
        bundle: true,
        splitting: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        external: EXTERNAL,
        plugins: [dynamicImportsFromNodeModules],
        banner: REQUIRE_BANNER,
        define,
        // Less to parse at every start (about 10 ms of the ~40 ms nats.js costs); names are kept,
        // and `node --enable-source-maps` maps a stack trace back to the TypeScript sources.
        minifyWhitespace: true,
        minifySyntax: true,
        sourcemap: 'linked',
        sourcesContent: false,
        metafile: true,
        write: false,
        logLevel: 'warning',
      }),
      build({ ...workerBuildOptions(), absWorkingDir: packageRoot, outfile: prebuiltWorker, define, metafile: true, write: false }),
    ]);
    const inputs = {};
    for (const file of [
      ...Object.keys(cli.metafile.inputs),
      ...Object.keys(worker.metafile.inputs),
      'host/cli/build-dist.mjs',
      'host/cli/dist.mjs',
      'node_modules/.package-lock.json',
    ]) {
      // The worker bundle inlines dependencies; their lock file stands for all of them.
      // (esbuild names them by real path, which for a symlinked node_modules lies outside the package.)
      if (/(^|\/)node_modules\//.test(file) && file !== 'node_modules/.package-lock.json') continue;
      const stamp = fileStamp(file);
      if (stamp) inputs[file] = stamp;
    }
    // A source saved while esbuild read it may be in the bundle in either version: build again
    // (a bounded number of times: a file dated in the future would otherwise never settle).
    if (attempt < MAX_ATTEMPTS && Object.values(inputs).some(([mtimeMs]) => mtimeMs >= since)) continue;

    rmSync(inputsFile, { force: true });
    mkdirSync(distDir, { recursive: true });
    // Chunks (shared and lazily imported) before the entries that import them, each written
    // whole (tmp + rename), so a concurrent start never sees half a file.
    const outputs = [...cli.outputFiles, ...worker.outputFiles].sort((a, b) => rank(a.path) - rank(b.path));
    for (const out of outputs) {
      const tmp = `${out.path}.${process.pid}.tmp`;
      writeFileSync(tmp, out.contents);
      renameSync(tmp, out.path);
    }
    const written = new Set(outputs.map((o) => o.path));
    pruneOldOutputs(written);
    writeFileSync(
      inputsFile,
      `${JSON.stringify({ version: STAMP_VERSION, builtAt: new Date().toISOString(), inputs, outputs: [...written].filter((p) => !p.endsWith('.map')).map((p) => relative(packageRoot, p)) })}\n`,
    );
    return { built: true, reason: force ? 'forced' : reason, ms: Math.round(performance.now() - started), files: outputs.length };
  }
}

const ENTRIES = new Set(['cli.js', 'actor-build-worker.js', 'actor-worker.js']);
const rank = (path) => (ENTRIES.has(basename(path)) ? 1 : 0);

/** Remove outputs of earlier builds once no process can still be importing them. */
function pruneOldOutputs(keep) {
  const now = Date.now();
  for (const name of readdirSync(distDir)) {
    const path = join(distDir, name);
    if (keep.has(path) || name === 'inputs.json') continue;
    try {
      if (now - statSync(path).mtimeMs > OLD_OUTPUT_GRACE_MS) rmSync(path, { force: true });
    } catch {
      // Removed by a concurrent build: nothing left to do.
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const result = await buildDist({ force: process.argv.includes('--force') });
  if (result.built) console.error(`trellis: built dist/ (${result.files} files, ${result.ms} ms; ${result.reason})`);
}
