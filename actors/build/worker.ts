/**
 * Runs one componentize-js or jco embed/new step in its own process. Both tools run wasm-tools
 * on top of @bytecodealliance/preview2-shim, which only sees files under its preopens, so the
 * step must preopen `/`; doing that in a throwaway process keeps it out of any process that also
 * runs actors on the same shim (the test runner, the bench). It also lets builds use every core.
 *
 * Usage: node --import tsx worker.ts '<json WorkerJob>'; exit 0 with the component written to
 * `out` (atomically), or exit 1 with the tool's message on stderr.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';

/** One step: componentize a bundled JS module, or turn a core module into a component. */
export type WorkerJob =
  | { kind: 'js'; source: string; witDir: string; world?: string; pure: boolean; out: string }
  | { kind: 'core'; source: string; witDir: string; world?: string; out: string };

async function run(job: WorkerJob): Promise<void> {
  // The package's `types` condition points TypeScript at the browser shim (in-memory file data);
  // Node loads the nodejs shim, whose preopens map guest paths to host paths.
  (_setPreopens as (preopens: Record<string, string>) => void)({ '/': '/' });
  let component: Uint8Array;
  if (job.kind === 'js') {
    const { componentize } = await import('@bytecodealliance/componentize-js');
    ({ component } = await componentize({
      sourcePath: job.source,
      witPath: job.witDir,
      ...(job.world ? { worldName: job.world } : {}),
      ...(job.pure ? { disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'] } : {}),
    }));
  } else {
    const { componentEmbed, componentNew } = await import('@bytecodealliance/jco');
    const embedded = await componentEmbed({
      binary: await readFile(job.source),
      witPath: job.witDir,
      ...(job.world ? { world: job.world } : {}),
    });
    component = await componentNew(embedded);
  }
  // Write beside the target and rename, so a concurrent reader never sees half a component; the
  // rename happens here rather than in the parent so that a parent killed mid-build (a test
  // runner timing out) still leaves a complete component and no debris.
  const partial = `${job.out}.${process.pid}.partial`;
  await writeFile(partial, component);
  await rename(partial, job.out);
}

try {
  await run(JSON.parse(process.argv[2] ?? '') as WorkerJob);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
