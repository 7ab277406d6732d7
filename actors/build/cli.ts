/**
 * Builds every example actor into the cache and prints what it built:
 * `node --import tsx actors/build/cli.ts [--cache-dir DIR]`.
 */
import { buildExampleActors } from './index.ts';

const flag = process.argv.indexOf('--cache-dir');
const cacheDir = flag >= 0 ? process.argv[flag + 1] : undefined;
const started = performance.now();
try {
  const paths = await buildExampleActors({ ...(cacheDir ? { cacheDir } : {}), log: (line) => console.log(line) });
  console.log(`${Object.keys(paths).length} actors in ${((performance.now() - started) / 1000).toFixed(1)}s:`);
  for (const [name, path] of Object.entries(paths)) console.log(`  ${name.padEnd(12)} ${path}`);
} catch (err) {
  const code = (err as { code?: string }).code;
  console.error(`${code ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
