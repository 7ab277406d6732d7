/**
 * Assembles the WIT directory a build resolves against: the world's own package at the root, and
 * under `deps/` the trellis:actor package plus the WASI packages (wasi:http, filesystem, cli, ...).
 *
 * jco ships WASI WIT snapshots, but not for the exact WASI release componentize-js's engine is
 * built against (StarlingMonkey imports and exports `@0.2.10`); the splicer matches the
 * `wasi:http/incoming-handler` export by exact version. WASI 0.2.x releases only add items, so
 * we take the newest 0.2 snapshot jco ships and pin its version to the engine's.
 */
import { cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { packagePath } from '../../lattice/package-root/index.ts';

/** The trellis:actor WIT package. */
export const witDir = packagePath('actors', 'wit');

/** The WASI release the componentize-js engine (StarlingMonkey) is built against. */
const ENGINE_WASI_VERSION = '0.2.10';

const WASI_SNAPSHOT = '0.2.12';
const WASI_PACKAGES = ['cli', 'clocks', 'filesystem', 'http', 'io', 'random', 'sockets'] as const;

function wasiSnapshotDir(): string {
  const jcoApi = createRequire(packagePath('package.json')).resolve('@bytecodealliance/jco');
  return join(dirname(jcoApi), '..', 'lib', 'wit', 'builtin', WASI_SNAPSHOT);
}

async function wasiPackage(name: (typeof WASI_PACKAGES)[number]): Promise<string> {
  const text = await readFile(join(wasiSnapshotDir(), `wasi-${name}`, 'package.wit'), 'utf8');
  return text.replaceAll(`@${WASI_SNAPSHOT}`, `@${ENGINE_WASI_VERSION}`);
}

/** Which root package a build uses: a WIT dir or file of the user's, or WASI's own wasi:http. */
export type WitRoot = { path: string } | { wasiHttp: true };

/** Write a resolvable WIT dir for `root` into the empty dir `into`. */
export async function assembleWit(root: WitRoot, into: string): Promise<void> {
  await mkdir(join(into, 'deps'), { recursive: true });
  if ('wasiHttp' in root) {
    await writeFile(join(into, 'http.wit'), await wasiPackage('http'));
  } else if ((await stat(root.path)).isDirectory()) {
    await cp(root.path, into, { recursive: true });
  } else {
    await cp(root.path, join(into, basename(root.path)));
  }
  const rootFiles = (await readdir(into)).filter((f) => f.endsWith('.wit'));
  const rootText = (await Promise.all(rootFiles.map((f) => readFile(join(into, f), 'utf8')))).join('\n');
  if (!/^\s*package\s+trellis:actor@/m.test(rootText)) {
    await cp(witDir, join(into, 'deps', 'trellis-actor'), { recursive: true });
  }
  for (const name of WASI_PACKAGES) {
    if (name === 'http' && 'wasiHttp' in root) continue;
    await mkdir(join(into, 'deps', `wasi-${name}`), { recursive: true });
    await writeFile(join(into, 'deps', `wasi-${name}`, 'package.wit'), await wasiPackage(name));
  }
}
