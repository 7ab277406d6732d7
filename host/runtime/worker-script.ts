/**
 * The worker thread's script. Worker threads do not inherit the TypeScript loader, and starting
 * tsx inside every worker costs ~1 s (its hooks run on an extra loader thread), so the worker
 * and its imports are bundled into one plain ESM file with esbuild (the compiler tsx itself
 * uses) and every worker starts from that file in a few milliseconds. The dist/ build
 * (host/cli/dist.mjs) prebuilds it with the same options; run from sources, it is built once
 * per process on first use.
 */
import { createHash } from 'node:crypto';
import { writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BuildOptions } from 'esbuild';
import { bundled, packagePath } from '../../lattice/package-root/index.ts';

/** Where the dist/ build writes the prebuilt worker. */
export const prebuiltWorker = packagePath('dist', 'actor-worker.js');

/** esbuild options for the worker bundle, shared with the dist/ build. */
export function workerBuildOptions(): BuildOptions {
  return {
    entryPoints: [packagePath('host', 'runtime', 'worker.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // CommonJS dependencies (nats.js and its crypto) require() Node built-ins, which an ESM
    // bundle can only do through a real require.
    banner: { js: "import { createRequire as __trellisCreateRequire } from 'node:module'; const require = __trellisCreateRequire(import.meta.url);" },
    logLevel: 'silent',
  };
}

let script: Promise<URL> | undefined;

/** file: URL of the bundled worker: the prebuilt one from dist/, else built on first use. */
export function workerScript(): Promise<URL> {
  if (bundled) return Promise.resolve(pathToFileURL(prebuiltWorker));
  script ??= (async () => {
    const { build } = await import('esbuild');
    const out = await build({ ...workerBuildOptions(), write: false });
    const code = out.outputFiles![0]!.contents;
    const file = join(tmpdir(), `trellis-actor-worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, code);
    await rename(tmp, file);
    return pathToFileURL(file);
  })();
  script.catch(() => (script = undefined));
  return script;
}
