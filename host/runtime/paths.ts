/** Guest path handling shared by the policy (main thread) and the sandbox (worker). */

/** Normalise a guest path to an absolute path without `.`/`..` or trailing slash. */
export function normalizeGuestPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}
