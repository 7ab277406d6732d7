/**
 * Where this package's own files are (package.json, dist/, actors/, host/cli/trellis.js), for
 * code that runs either from its TypeScript sources or from the dist/ bundle. `import.meta.url`
 * names the file that holds the code, and in a bundle that is some dist/ chunk rather than the
 * source file, so a path relative to it is wrong in one of the two modes; every such resource
 * is resolved from the package root instead.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Replaced with `true` by the dist build (host/cli/dist.mjs, esbuild `define`); never declared
// at run time in sources, hence the typeof guard.
declare const TRELLIS_BUNDLED: boolean | undefined;

/** Whether this code runs from the dist/ bundle (whose files all sit directly in dist/). */
export const bundled: boolean = typeof TRELLIS_BUNDLED !== 'undefined' && TRELLIS_BUNDLED === true;

/** The package root, with no trailing separator. */
export const packageRoot: string = resolve(fileURLToPath(new URL(bundled ? '..' : '../..', import.meta.url)));

/** A path inside the package, e.g. `packagePath('actors', 'wit')`. */
export function packagePath(...parts: string[]): string {
  return join(packageRoot, ...parts);
}
