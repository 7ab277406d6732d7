/**
 * wasi:filesystem against real directories, called the way jco's bindings call it: descriptors
 * from the preopens, flags as objects, errors thrown as WASI error-code strings. The sandbox
 * reports violations to the host, recorded here.
 */
import { linkSync, lstatSync, mkdirSync, mkdtempSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { wasiImports } from './index.ts';

interface Descriptor {
  [method: string]: (...args: any[]) => any;
}

let ro: string;
let rw: string;
let violations: string[];
let dirs: Map<string, Descriptor>;

beforeEach(() => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'trellis-wasi-fs-')));
  ro = join(root, 'ro');
  rw = join(root, 'rw');
  mkdirSync(ro);
  mkdirSync(rw);
  writeFileSync(join(ro, 'kept.txt'), 'read-only content');
  writeFileSync(join(rw, 'a'), 'first');
  writeFileSync(join(rw, 'b'), 'second');
  violations = [];
  const imports = wasiImports(
    {
      actor: 'fs-test',
      env: [],
      allowedEnvVars: [],
      allowedHosts: [],
      dirs: [
        { guestPath: '/data', hostPath: ro, readonly: true },
        { guestPath: '/mnt/scratch', hostPath: rw, readonly: false },
      ],
    },
    {
      violation: (m) => void violations.push(m),
      output: () => {},
      httpSend: () => {
        throw new Error('no http here');
      },
    },
  );
  const preopens = imports['wasi:filesystem/preopens']!.getDirectories as () => [Descriptor, string][];
  dirs = new Map(preopens().map(([d, name]) => [name, d]));
});

const dir = (name: string): Descriptor => dirs.get(name)!;
const open = (d: Descriptor, path: string, write = false): Descriptor => d.openAt({ symlinkFollow: true }, path, {}, { read: true, write });

/** What a call threw (WASI error codes are strings), or 'returned'. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return 'returned';
}

describe('wasi filesystem', () => {
  it('wasi filesystem - metadataHash tells apart files whose paths have equal length, and agrees with metadataHashAt', () => {
    const scratch = dir('/mnt/scratch');
    const a = open(scratch, 'a');
    const b = open(scratch, 'b');
    expect(a.metadataHash()).not.toEqual(b.metadataHash());
    expect(a.metadataHash()).toEqual(scratch.metadataHashAt({ symlinkFollow: true }, 'a'));
    // The same object opened twice hashes the same; a directory differs from its files.
    expect(open(scratch, 'a').metadataHash()).toEqual(a.metadataHash());
    expect(scratch.metadataHash()).not.toEqual(a.metadataHash());
    // Virtual directories hash by path, not as one shared value, and asking is no violation.
    const root = dir('/');
    expect(root.metadataHash()).not.toEqual(root.metadataHashAt({}, 'mnt'));
    expect(violations).toEqual([]);
  });

  it('wasi filesystem - metadataHashAt without symlinkFollow hashes the link itself', () => {
    symlinkSync('a', join(rw, 'to-a'));
    const scratch = dir('/mnt/scratch');
    expect(scratch.metadataHashAt({ symlinkFollow: true }, 'to-a')).toEqual(scratch.metadataHashAt({}, 'a'));
    expect(scratch.metadataHashAt({}, 'to-a')).not.toEqual(scratch.metadataHashAt({}, 'a'));
  });

  it('wasi filesystem - linkAt makes a hard link inside a writable grant', () => {
    const scratch = dir('/mnt/scratch');
    expect(thrown(() => scratch.linkAt({}, 'a', scratch, 'a2'))).toBe('returned');
    expect(violations).toEqual([]);
    expect(statSync(join(rw, 'a2')).ino).toBe(statSync(join(rw, 'a')).ino);
    expect(open(scratch, 'a2').metadataHash()).toEqual(open(scratch, 'a').metadataHash());
    expect(open(scratch, 'a2').isSameObject(open(scratch, 'a'))).toBe(true);
    expect(open(scratch, 'b').isSameObject(open(scratch, 'a'))).toBe(false);
    expect(dir('/').isSameObject(open(dir('/'), '.'))).toBe(true);
    expect(dir('/').isSameObject(scratch)).toBe(false);
    // Ordinary failures are WASI error codes, not violations.
    expect(thrown(() => scratch.linkAt({}, 'a', scratch, 'b'))).toBe('exist');
    expect(thrown(() => scratch.linkAt({}, 'missing', scratch, 'c'))).toBe('no-entry');
    expect(violations).toEqual([]);
  });

  it('wasi filesystem - linkAt needs both ends writable and inside the grants', () => {
    const scratch = dir('/mnt/scratch');
    const data = dir('/data');
    // Linking a read-only file into a writable grant would make it writable through the new name.
    expect(thrown(() => data.linkAt({}, 'kept.txt', scratch, 'stolen'))).toBe('read-only');
    expect(thrown(() => scratch.linkAt({}, 'a', data, 'planted'))).toBe('read-only');
    expect(violations).toEqual(['sandbox violation: fs write', 'sandbox violation: fs write']);
    expect(thrown(() => scratch.linkAt({}, '../../etc/passwd', scratch, 'passwd'))).toBe('access');
    expect(violations[2]).toBe('permission denied: /etc/passwd');
    expect(() => lstatSync(join(rw, 'stolen'))).toThrow();
    expect(() => lstatSync(join(ro, 'planted'))).toThrow();
    expect(() => lstatSync(join(rw, 'passwd'))).toThrow();
  });

  it('wasi filesystem - setTimesAt sets, keeps or stamps each time as the variant says', () => {
    const scratch = dir('/mnt/scratch');
    const at = { tag: 'timestamp', val: { seconds: 1_000_000_000n, nanoseconds: 500_000_000 } };
    scratch.setTimesAt({ symlinkFollow: true }, 'a', at, at);
    expect(statSync(join(rw, 'a')).mtimeMs).toBe(1_000_000_000_500);
    expect(statSync(join(rw, 'a')).atimeMs).toBe(1_000_000_000_500);
    const before = Date.now();
    scratch.setTimesAt({ symlinkFollow: true }, 'a', { tag: 'no-change' }, { tag: 'now' });
    const st = statSync(join(rw, 'a'));
    expect(st.atimeMs).toBe(1_000_000_000_500);
    expect(st.mtimeMs).toBeGreaterThanOrEqual(before - 1000);
    expect(violations).toEqual([]);
    expect(thrown(() => scratch.setTimesAt({}, 'missing', at, at))).toBe('no-entry');
  });

  it('wasi filesystem - setTimesAt without symlinkFollow changes the link, not its target', () => {
    symlinkSync('b', join(rw, 'to-b'));
    const target = statSync(join(rw, 'b')).mtimeMs;
    const at = { tag: 'timestamp', val: { seconds: 1_234_567_890n, nanoseconds: 0 } };
    dir('/mnt/scratch').setTimesAt({}, 'to-b', at, at);
    expect(lstatSync(join(rw, 'to-b')).mtimeMs).toBe(1_234_567_890_000);
    expect(statSync(join(rw, 'b')).mtimeMs).toBe(target);
  });

  it('wasi filesystem - setTimes on a descriptor changes its file; read-only grants refuse both forms', () => {
    const at = { tag: 'timestamp', val: { seconds: 1_111_111_111n, nanoseconds: 0 } };
    open(dir('/mnt/scratch'), 'b', true).setTimes(at, at);
    expect(statSync(join(rw, 'b')).mtimeMs).toBe(1_111_111_111_000);
    dir('/mnt/scratch').setTimes(at, { tag: 'no-change' });
    expect(statSync(rw).atimeMs).toBe(1_111_111_111_000);

    const kept = statSync(join(ro, 'kept.txt')).mtimeMs;
    expect(thrown(() => dir('/data').setTimesAt({ symlinkFollow: true }, 'kept.txt', at, at))).toBe('read-only');
    expect(thrown(() => open(dir('/data'), 'kept.txt').setTimes(at, at))).toBe('read-only');
    expect(thrown(() => dir('/data').setTimes(at, at))).toBe('read-only');
    expect(thrown(() => dir('/').setTimes(at, at))).toBe('read-only');
    expect(violations).toEqual(Array(4).fill('sandbox violation: fs write'));
    expect(statSync(join(ro, 'kept.txt')).mtimeMs).toBe(kept);
  });

  it('wasi filesystem - virtual directories have a synthetic stat, not the host root', () => {
    const synthetic = {
      type: 'directory',
      // 1, as file systems without Unix link counts report: tools then do not infer "no subdirectories".
      linkCount: 1n,
      size: 0n,
      dataAccessTimestamp: undefined,
      dataModificationTimestamp: undefined,
      statusChangeTimestamp: undefined,
    };
    const root = dir('/');
    expect(root.stat()).toEqual(synthetic);
    expect(root.statAt({}, 'mnt')).toEqual(synthetic);
    expect(open(root, 'mnt').stat()).toEqual(synthetic);
    // A grant itself has its real directory's stat; outside the grants is still a violation.
    expect(root.statAt({}, 'mnt/scratch').size).toBe(BigInt(statSync(rw).size));
    expect(violations).toEqual([]);
    expect(thrown(() => root.statAt({}, 'etc'))).toBe('access');
    expect(violations).toEqual(['permission denied: /etc']);
  });

  it('wasi filesystem - a hard link planted by the operator does not widen a read-only grant', () => {
    linkSync(join(rw, 'a'), join(ro, 'shared'));
    expect(thrown(() => open(dir('/data'), 'shared', true))).toBe('read-only');
    expect(violations).toEqual(['sandbox violation: fs write']);
  });
});
