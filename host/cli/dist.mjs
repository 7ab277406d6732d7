// Where the compiled CLI lives (dist/ at the package root) and whether it is current. Plain
// JavaScript with only node:fs, because the bin runs this before anything else on every start.
//
// dist/inputs.json, written last by the build (build-dist.mjs), lists every file the bundles were
// built from with its mtime and size: the sources esbuild read (its metafile), the build scripts,
// and the installed dependencies' lock (the actor worker bundle inlines them). dist/ is current
// when every one of them still has exactly that mtime and size. Comparing for equality, not
// "older than", also catches a file replaced by an older copy (a checkout, `cp -p`). Stat-ing the
// ~80 listed files is a fraction of a millisecond, cheaper than walking the source folders.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageRoot = fileURLToPath(new URL('../..', import.meta.url));
export const distDir = join(packageRoot, 'dist');
export const inputsFile = join(distDir, 'inputs.json');
/** The CLI bundle (exports `main(argv)`, like host/cli/index.ts). */
export const cliBundle = join(distDir, 'cli.js');
export const STAMP_VERSION = 1;

/** mtime and size of a file relative to the package root, or undefined when it is missing. */
export function fileStamp(file) {
  const st = statSync(join(packageRoot, file), { throwIfNoEntry: false });
  return st ? [st.mtimeMs, st.size] : undefined;
}

/** Why dist/ is not current (a sentence), or undefined when it is. */
export function staleReason() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(inputsFile, 'utf8'));
  } catch {
    return 'dist/ has not been built';
  }
  if (stamp.version !== STAMP_VERSION || typeof stamp.inputs !== 'object') return 'dist/ was built by another version of the build';
  for (const [file, recorded] of Object.entries(stamp.inputs)) {
    const now = fileStamp(file);
    if (!now) return `${file} is gone`;
    if (now[0] !== recorded[0] || now[1] !== recorded[1]) return `${file} changed since dist/ was built`;
  }
  for (const file of stamp.outputs ?? []) if (!fileStamp(file)) return `${file} is missing`;
  return undefined;
}
