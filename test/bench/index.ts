/**
 * `npm run bench`: runs every benchmark module in turn, prints its tables, and writes all results
 * to bench-results.json (git-ignored). A module is a file here exporting
 * `async function run(): Promise<Record<string, unknown>>`; one that is missing, or does not
 * export run() yet, is skipped with a note. Run a subset with `npm run bench -- rpc`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

/** Benchmark modules, in the order they run. */
const MODULES = ['rpc', 'rpc-tls', 'runtime', 'density', 'scale-out', 'scale-model', 'gateway', 'hotkey', 'cli', 'placement', 'repair', 'canary-metrics', 'canary-controller', 'signing'] as const;

/**
 * Whether a module exports run(), read from its source: some bench files are also scripts that
 * start measuring when imported, so they are imported only when they really are modules.
 */
function exportsRun(file: string): boolean {
  return /export\s+(?:async\s+)?function\s+run\s*\(|export\s+const\s+run\s*=|export\s*\{[^}]*\brun\b[^}]*\}/.test(readFileSync(file, 'utf8'));
}

type BenchModule = { run?: unknown };

const selected = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const results: Record<string, unknown> = {
  startedAt: new Date().toISOString(),
  node: process.version,
  platform: `${os.platform()} ${os.arch()}`,
  cpus: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model,
  modules: {} as Record<string, unknown>,
};
const modules = results.modules as Record<string, unknown>;
let failed = false;

for (const name of MODULES) {
  if (selected.length > 0 && !selected.includes(name)) continue;
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  if (!existsSync(file)) {
    console.log(`\n== ${name}: skipped (test/bench/${name}.ts does not exist yet)`);
    modules[name] = { skipped: 'module missing' };
    continue;
  }
  const mod = exportsRun(file) ? ((await import(`./${name}.ts`)) as BenchModule) : {};
  if (typeof mod.run !== 'function') {
    console.log(`\n== ${name}: skipped (test/bench/${name}.ts does not export run() yet; run it alone: node --import tsx test/bench/${name}.ts)`);
    modules[name] = { skipped: 'no run() export' };
    continue;
  }
  console.log(`\n== ${name}`);
  const started = performance.now();
  try {
    const result = (await (mod.run as () => Promise<Record<string, unknown>>)()) ?? {};
    const seconds = (performance.now() - started) / 1000;
    modules[name] = { seconds, ...result };
    console.log(`(${name} took ${seconds.toFixed(1)} s)`);
  } catch (err) {
    failed = true;
    modules[name] = { error: (err as Error).stack ?? String(err) };
    console.error(`${name} failed:`, err);
  }
}

const out = fileURLToPath(new URL('../../bench-results.json', import.meta.url));
await writeFile(out, JSON.stringify(results, null, 2) + '\n');
console.log(`\nresults written to ${out}`);
// Children and servers are disposed by the modules; exit even if a library left a timer behind.
process.exit(failed ? 1 : 0);
