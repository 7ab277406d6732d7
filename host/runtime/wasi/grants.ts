/**
 * Which directory grant a guest path falls in, and where that is on the host. Two steps:
 * `matchGrant` is lexical and pure (normalise, then the most specific grant containing the
 * path); `realPathIn` then asks the file system where the path really leads, so that a symlink
 * cannot take the guest out of its grant.
 */
import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { normalizeGuestPath } from '../paths.ts';

/** One directory grant: the guest sees `hostPath` (a real path) at `guestPath`. */
export interface Grant {
  guestPath: string;
  hostPath: string;
  readonly: boolean;
}

export type GrantMatch =
  /** Inside a grant; `hostPath` is lexical (symlinks not yet followed). */
  | { kind: 'grant'; guestPath: string; grant: Grant; hostPath: string }
  /** `/` or an ancestor of a grant (`/mnt` of `/mnt/data`) inside none: an empty, read-only directory. */
  | { kind: 'virtual'; guestPath: string }
  /** Nothing the guest may reach. */
  | { kind: 'outside'; guestPath: string };

/** Whether host or guest path `p` is `root` or below it. */
export function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : root + '/');
}

/**
 * Match a guest path (any form: `.`, `..` and repeated slashes are normalised first, and `..`
 * stops at `/`, so it can leave a grant only into another grant or outside) against `grants`.
 * The longest grant containing the path wins, so a grant nested in another one shadows it.
 */
export function matchGrant(grants: readonly Grant[], path: string): GrantMatch {
  const guestPath = normalizeGuestPath(path);
  let best: Grant | undefined;
  for (const g of grants) {
    if (inside(g.guestPath, guestPath) && (!best || g.guestPath.length > best.guestPath.length)) best = g;
  }
  if (best) return { kind: 'grant', guestPath, grant: best, hostPath: join(best.hostPath, guestPath.slice(best.guestPath.length)) };
  if (guestPath === '/' || grants.some((g) => inside(guestPath, g.guestPath))) return { kind: 'virtual', guestPath };
  return { kind: 'outside', guestPath };
}

export type RealPath =
  /** The real path, inside the grant; `exists` is false for a path to create. */
  | { kind: 'path'; hostPath: string; exists: boolean }
  /** The path leads out of the grant (a violation). */
  | { kind: 'escape' }
  /** The lookup failed with this Node error code (`ENOENT`, `ENOTDIR`, `ELOOP`...). */
  | { kind: 'error'; errno: string };

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'EIO';

/**
 * Where the lexical host path `lexical` (from `matchGrant`) really leads, checked to stay in
 * `root`, the grant's real host path. An existing path is followed to its real path, except a
 * final symlink with `followFinal` false, which is the link itself. A path to create is decided
 * by the real path of its deepest existing ancestor. A dangling final symlink that would be
 * followed is an escape when it points outside, and otherwise does not exist.
 */
export function realPathIn(root: string, lexical: string, followFinal: boolean): RealPath {
  const within = (real: string, exists: boolean): RealPath => (inside(root, real) ? { kind: 'path', hostPath: real, exists } : { kind: 'escape' });
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(lexical);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') return { kind: 'error', errno: errnoOf(err) };
  }
  if (st && (followFinal || !st.isSymbolicLink())) {
    try {
      return within(fs.realpathSync(lexical), true);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || !st.isSymbolicLink()) return { kind: 'error', errno: errnoOf(err) };
      // resolve, not join: an absolute target replaces the link's folder.
      const dangling = within(resolve(dirname(lexical), fs.readlinkSync(lexical)), false);
      return dangling.kind === 'escape' ? dangling : { kind: 'error', errno: 'ENOENT' };
    }
  }
  // The link itself, or a path to create: its deepest existing ancestor decides.
  const rest: string[] = [];
  let probe = lexical;
  for (;;) {
    rest.unshift(probe.slice(probe.lastIndexOf('/') + 1));
    probe = join(probe, '..');
    try {
      return within(join(fs.realpathSync(probe), ...rest), !!st);
    } catch (err) {
      // Climbing above the grant's own folder finds nothing the guest may use.
      if (errnoOf(err) !== 'ENOENT' || !inside(root, probe)) return { kind: 'error', errno: errnoOf(err) };
    }
  }
}
