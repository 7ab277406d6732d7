/**
 * The worker thread's script. Worker threads do not inherit the TypeScript loader, and starting
 * tsx inside every worker costs ~1 s (its hooks run on an extra loader thread), so the worker
 * and its imports are bundled once per process into one plain ESM file with esbuild (the
 * compiler tsx itself uses) and every worker starts from that file in a few milliseconds.
 */
import { createHash } from 'node:crypto';
import { writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

let script: Promise<URL> | undefined;

/** file: URL of the bundled worker, built on first use. */
export function workerScript(): Promise<URL> {
  script ??= (async () => {
    const out = await build({
      entryPoints: [fileURLToPath(new URL('./worker.ts', import.meta.url))],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // CommonJS dependencies (nats.js and its crypto) require() Node built-ins, which an ESM
      // bundle can only do through a real require.
      banner: { js: "import { createRequire as __trellisCreateRequire } from 'node:module'; const require = __trellisCreateRequire(import.meta.url);" },
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0]!.contents;
    const file = join(tmpdir(), `trellis-actor-worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, code);
    await rename(tmp, file);
    return pathToFileURL(file);
  })();
  script.catch(() => (script = undefined));
  return script;
}
