/**
 * Test-only actors (test/fixtures/*.js), built on first use into .cache/fixtures keyed by a
 * sha256 of their source, so a test file pays the componentize-js build once per change.
 */
import { createHash } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildActor } from '../../actors/index.ts';

/** Path of the built fixture actor `name` (test/fixtures/<name>.js), building it when needed. */
export async function fixtureActor(name: string): Promise<string> {
  const entry = fileURLToPath(new URL(`../fixtures/${name}.js`, import.meta.url));
  const hash = createHash('sha256').update(await readFile(entry)).digest('hex').slice(0, 16);
  const out = fileURLToPath(new URL(`../../.cache/fixtures/${name}-${hash}.wasm`, import.meta.url));
  const built = await access(out).then(() => true, () => false);
  if (!built) await buildActor({ entry, out });
  return out;
}
