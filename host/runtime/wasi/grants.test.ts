import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inside, matchGrant, realPathIn, type Grant } from './grants.ts';

const data: Grant = { guestPath: '/data', hostPath: '/srv/data', readonly: true };
const nested: Grant = { guestPath: '/data/uploads', hostPath: '/var/uploads', readonly: false };
const deep: Grant = { guestPath: '/mnt/a/b', hostPath: '/host/b/', readonly: false };
const grants = [data, nested, deep];

describe('grant resolution', () => {
  it('grant resolution - a path inside a grant maps below its host path', () => {
    expect(matchGrant(grants, '/data')).toEqual({ kind: 'grant', guestPath: '/data', grant: data, hostPath: '/srv/data' });
    expect(matchGrant(grants, '/data/x/y.txt')).toEqual({ kind: 'grant', guestPath: '/data/x/y.txt', grant: data, hostPath: '/srv/data/x/y.txt' });
    // A host path given with a trailing slash still joins cleanly.
    expect(matchGrant(grants, '/mnt/a/b/c')).toMatchObject({ grant: deep, hostPath: '/host/b/c' });
  });

  it('grant resolution - the most specific grant wins, whatever the order of the list', () => {
    expect(matchGrant(grants, '/data/uploads/f')).toMatchObject({ grant: nested, hostPath: '/var/uploads/f' });
    expect(matchGrant([nested, data], '/data/uploads')).toMatchObject({ grant: nested, hostPath: '/var/uploads' });
    expect(matchGrant([nested, data], '/data/uploaded')).toMatchObject({ grant: data, hostPath: '/srv/data/uploaded' });
  });

  it('grant resolution - a shared name prefix is not containment', () => {
    expect(matchGrant(grants, '/database')).toEqual({ kind: 'outside', guestPath: '/database' });
    expect(inside('/data', '/database')).toBe(false);
    expect(inside('/data', '/data')).toBe(true);
    expect(inside('/', '/anything')).toBe(true);
  });

  it('grant resolution - paths are normalised first, and `..` cannot climb above /', () => {
    expect(matchGrant(grants, '/data/./x//y/')).toMatchObject({ kind: 'grant', guestPath: '/data/x/y', hostPath: '/srv/data/x/y' });
    expect(matchGrant(grants, '/data/x/../../etc/passwd')).toEqual({ kind: 'outside', guestPath: '/etc/passwd' });
    expect(matchGrant(grants, '/data/../../../../data/ok')).toMatchObject({ kind: 'grant', grant: data, hostPath: '/srv/data/ok' });
    // Leaving a nested grant by `..` lands in its parent grant, with the parent's rights.
    expect(matchGrant(grants, '/data/uploads/../secret')).toMatchObject({ grant: data, hostPath: '/srv/data/secret' });
  });

  it('grant resolution - / and the ancestors of grants are virtual, everything else is outside', () => {
    expect(matchGrant(grants, '/')).toEqual({ kind: 'virtual', guestPath: '/' });
    expect(matchGrant([], '/')).toEqual({ kind: 'virtual', guestPath: '/' });
    expect(matchGrant(grants, '/mnt')).toEqual({ kind: 'virtual', guestPath: '/mnt' });
    expect(matchGrant(grants, '/mnt/a/')).toEqual({ kind: 'virtual', guestPath: '/mnt/a' });
    expect(matchGrant(grants, '/mnt/other')).toEqual({ kind: 'outside', guestPath: '/mnt/other' });
    expect(matchGrant([], '/etc')).toEqual({ kind: 'outside', guestPath: '/etc' });
    // A grant nested in another is reached through a real directory, not a virtual one.
    expect(matchGrant(grants, '/data')).toMatchObject({ kind: 'grant', grant: data });
  });
});

describe('grant resolution on disk', () => {
  /** A grant folder holding a file, a subfolder, and links in, out and dangling. */
  function plant() {
    const base = realpathSync(mkdtempSync(join(tmpdir(), 'trellis-grants-')));
    const root = join(base, 'grant');
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'file'), 'x');
    writeFileSync(join(base, 'secret'), 'outside');
    symlinkSync('file', join(root, 'in'));
    symlinkSync(join(base, 'secret'), join(root, 'out'));
    symlinkSync(base, join(root, 'out-dir'));
    symlinkSync('sub/not-yet', join(root, 'dangling-in'));
    symlinkSync('../elsewhere', join(root, 'dangling-out'));
    symlinkSync(join(base, 'elsewhere'), join(root, 'dangling-out-absolute'));
    return { base, root };
  }

  it('grant resolution on disk - existing paths resolve to their real path', () => {
    const { root } = plant();
    expect(realPathIn(root, join(root, 'file'), true)).toEqual({ kind: 'path', hostPath: join(root, 'file'), exists: true });
    expect(realPathIn(root, join(root, 'in'), true)).toEqual({ kind: 'path', hostPath: join(root, 'file'), exists: true });
    // Not following: the link itself.
    expect(realPathIn(root, join(root, 'in'), false)).toEqual({ kind: 'path', hostPath: join(root, 'in'), exists: true });
    expect(realPathIn(root, root, true)).toEqual({ kind: 'path', hostPath: root, exists: true });
  });

  it('grant resolution on disk - a symlink leading out of the grant is an escape, followed or passed through', () => {
    const { root } = plant();
    expect(realPathIn(root, join(root, 'out'), true)).toEqual({ kind: 'escape' });
    expect(realPathIn(root, join(root, 'out-dir', 'secret'), true)).toEqual({ kind: 'escape' });
    expect(realPathIn(root, join(root, 'out-dir', 'new-file'), true)).toEqual({ kind: 'escape' });
    // The link itself (to unlink or readlink it) is inside.
    expect(realPathIn(root, join(root, 'out'), false)).toEqual({ kind: 'path', hostPath: join(root, 'out'), exists: true });
  });

  it('grant resolution on disk - a path to create is judged by its deepest existing ancestor', () => {
    const { root } = plant();
    expect(realPathIn(root, join(root, 'sub', 'new'), true)).toEqual({ kind: 'path', hostPath: join(root, 'sub', 'new'), exists: false });
    expect(realPathIn(root, join(root, 'sub', 'a', 'b'), true)).toEqual({ kind: 'path', hostPath: join(root, 'sub', 'a', 'b'), exists: false });
    expect(realPathIn(root, join(root, 'file', 'x'), true)).toEqual({ kind: 'error', errno: 'ENOTDIR' });
  });

  it('grant resolution on disk - a dangling link is an escape when it points out, and otherwise absent', () => {
    const { root } = plant();
    expect(realPathIn(root, join(root, 'dangling-out'), true)).toEqual({ kind: 'escape' });
    expect(realPathIn(root, join(root, 'dangling-out-absolute'), true)).toEqual({ kind: 'escape' });
    expect(realPathIn(root, join(root, 'dangling-in'), true)).toEqual({ kind: 'error', errno: 'ENOENT' });
    expect(realPathIn(root, join(root, 'dangling-out'), false)).toEqual({ kind: 'path', hostPath: join(root, 'dangling-out'), exists: true });
  });
});
