/**
 * wasi:filesystem, reachable only through the policy's directory grants. Every path goes
 * through the grant resolution of grants.ts (real-path containment: symlinks cannot lead out
 * of a grant); a path outside every grant is a violation (`permission denied`), a write to a
 * read-only grant another (`fs write`). Ancestors of grants (`/`, `/mnt` of `/mnt/data`) are
 * virtual: empty, read-only directories, so a guest can walk down to its grants.
 */
import * as fs from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import { normalizeGuestPath } from '../paths.ts';
import { matchGrant, realPathIn, type Grant } from './grants.ts';
import { InputStream, OutputStream } from './streams.ts';
import type { SandboxConfig, SandboxHost } from './types.ts';

type FsError = string;

const ERRORS: Record<string, FsError> = {
  ENOENT: 'no-entry',
  EEXIST: 'exist',
  ENOTDIR: 'not-directory',
  EISDIR: 'is-directory',
  ENOTEMPTY: 'not-empty',
  EACCES: 'access',
  EPERM: 'not-permitted',
  ELOOP: 'loop',
  ENAMETOOLONG: 'name-too-long',
  EINVAL: 'invalid',
  EXDEV: 'cross-device',
};

/** A Node errno code as a WASI error-code. */
const fsCode = (errno: string | undefined): FsError => ERRORS[errno ?? ''] ?? 'io';

/** What an fs call threw, as a WASI error-code (strings are already one). */
const wasiError = (err: unknown): FsError => (typeof err === 'string' ? err : fsCode((err as NodeJS.ErrnoException).code));

function typeOf(st: fs.Stats | fs.BigIntStats | fs.Dirent): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'regular-file';
  if (st.isSymbolicLink()) return 'symbolic-link';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  return 'unknown';
}

const datetime = (ns: bigint) => ({ seconds: ns / 1_000_000_000n, nanoseconds: Number(ns % 1_000_000_000n) });

function statOf(st: fs.BigIntStats) {
  return {
    type: typeOf(st),
    linkCount: st.nlink,
    size: st.size,
    dataAccessTimestamp: datetime(st.atimeNs),
    dataModificationTimestamp: datetime(st.mtimeNs),
    statusChangeTimestamp: datetime(st.ctimeNs),
  };
}

/**
 * The stat of a virtual directory: it has no host counterpart, so no times. A link count of 1
 * is what file systems without Unix link counts report; tools then do not infer from it that
 * the directory has no subdirectories.
 */
const VIRTUAL_STAT = Object.freeze({
  type: 'directory',
  linkCount: 1n,
  size: 0n,
  dataAccessTimestamp: undefined,
  dataModificationTimestamp: undefined,
  statusChangeTimestamp: undefined,
});

/** WASI's new-timestamp: leave the time, set it to now, or to a given time. */
type NewTimestamp = { tag: 'no-change' } | { tag: 'now' } | { tag: 'timestamp'; val: { seconds: bigint; nanoseconds: number } };

/**
 * The [atime, mtime] to give utimes, in seconds. Node has no UTIME_OMIT, so `no-change` writes
 * back the current time (from `current`, read only when needed), exact to well under 1 µs.
 */
function newTimes(atime: NewTimestamp, mtime: NewTimestamp, current: () => fs.Stats): [number, number] {
  const now = Date.now() / 1000;
  const st = atime.tag === 'no-change' || mtime.tag === 'no-change' ? current() : undefined;
  const pick = (t: NewTimestamp, currentMs: number | undefined): number =>
    t.tag === 'no-change' ? currentMs! / 1000 : t.tag === 'now' ? now : Number(t.val.seconds) + t.val.nanoseconds / 1e9;
  return [pick(atime, st?.atimeMs), pick(mtime, st?.mtimeMs)];
}

type Resolved = { grant: Grant; hostPath: string; exists: boolean };

/** Builds the filesystem interfaces for one sandbox. */
export function filesystemImports(cfg: SandboxConfig, host: SandboxHost) {
  const grants = cfg.dirs;
  // Metadata hashes are keyed per sandbox so that they do not reveal inode numbers.
  const hashKey = randomBytes(32);
  const hashOf = (identity: string) => {
    const digest = createHmac('sha256', hashKey).update(identity).digest();
    return { lower: digest.readBigUInt64LE(0), upper: digest.readBigUInt64LE(8) };
  };
  const identityHash = (st: fs.BigIntStats) => hashOf(`${st.dev}:${st.ino}`);
  const virtualHash = (guestPath: string) => hashOf(`virtual:${guestPath}`);
  const isVirtual = (guestPath: string) => matchGrant(grants, guestPath).kind === 'virtual';

  const deny = (guestPath: string): never => {
    host.violation(`permission denied: ${guestPath}`);
    throw 'access';
  };
  const denyWrite = (grant: Grant | undefined): void => {
    if (grant && !grant.readonly) return;
    host.violation('sandbox violation: fs write');
    throw 'read-only';
  };

  /** Map a guest path to its real host path inside its grant, denying anything outside. */
  const resolve = (guestPath: string, followFinal: boolean): Resolved => {
    const m = matchGrant(grants, guestPath);
    if (m.kind !== 'grant') return deny(m.guestPath);
    const real = realPathIn(m.grant.hostPath, m.hostPath, followFinal);
    if (real.kind === 'escape') return deny(m.guestPath);
    if (real.kind === 'error') throw fsCode(real.errno);
    return { grant: m.grant, hostPath: real.hostPath, exists: real.exists };
  };

  /**
   * The sequence every path operation shares: resolve the path in its grant (a violation
   * outside), refuse a write to a read-only grant, run the fs call, map its error to WASI's.
   */
  const at = <T>(guestPath: string, how: { follow: boolean; write: boolean }, op: (r: Resolved) => T): T => {
    const r = resolve(guestPath, how.follow);
    if (how.write) denyWrite(r.grant);
    try {
      return op(r);
    } catch (err) {
      throw wasiError(err);
    }
  };

  /** The same for the two-path operations (rename, link): both ends must be writable grants. */
  const between = (from: string, followFrom: boolean, to: string, op: (from: Resolved, to: Resolved) => void): void => {
    const a = resolve(from, followFrom);
    const b = resolve(to, false);
    denyWrite(a.grant);
    denyWrite(b.grant);
    try {
      op(a, b);
    } catch (err) {
      throw wasiError(err);
    }
  };

  class DirectoryEntryStream {
    #entries: fs.Dirent[];
    constructor(entries: fs.Dirent[]) {
      this.#entries = entries;
    }
    readDirectoryEntry() {
      const e = this.#entries.shift();
      return e && { type: typeOf(e), name: e.name };
    }
  }

  /** A directory (virtual when it has no grant), or an open file (with `fd`). */
  class Descriptor {
    #fd: number | undefined;
    constructor(
      readonly guestPath: string,
      /** Undefined for a virtual directory. */
      readonly hostPath: string | undefined,
      readonly writable: boolean,
      fd?: number,
    ) {
      this.#fd = fd;
    }
    /** The normalised guest path of `path` relative to this directory. */
    #at(path: string): string {
      return normalizeGuestPath(`${this.guestPath}/${path}`);
    }
    #file(): number {
      if (this.#fd === undefined) throw 'is-directory';
      return this.#fd;
    }
    #checkWrite(): void {
      if (!this.writable) denyWrite(undefined);
    }
    /** This descriptor's host stat; undefined for a virtual directory. */
    #stat(): fs.BigIntStats | undefined {
      if (this.#fd !== undefined) return fs.fstatSync(this.#fd, { bigint: true });
      return this.hostPath === undefined ? undefined : fs.statSync(this.hostPath, { bigint: true });
    }
    readViaStream(offset: bigint) {
      const fd = this.#file();
      let pos = Number(offset);
      return new InputStream((max) => {
        const buf = new Uint8Array(Math.min(max, 1 << 20));
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        pos += n;
        return n === 0 ? undefined : buf.subarray(0, n);
      });
    }
    writeViaStream(offset: bigint) {
      this.#checkWrite();
      const fd = this.#file();
      let pos = Number(offset);
      return new OutputStream((bytes) => {
        pos += fs.writeSync(fd, bytes, 0, bytes.length, pos);
      });
    }
    appendViaStream() {
      this.#checkWrite();
      const fd = this.#file();
      return new OutputStream((bytes) => void fs.writeSync(fd, bytes, 0, bytes.length, fs.fstatSync(fd).size));
    }
    advise(): void {}
    syncData(): void {}
    sync(): void {}
    getFlags() {
      return { read: true, write: this.writable };
    }
    getType() {
      return this.#fd === undefined ? 'directory' : 'regular-file';
    }
    setSize(size: bigint): void {
      this.#checkWrite();
      fs.ftruncateSync(this.#file(), Number(size));
    }
    setTimes(atime: NewTimestamp, mtime: NewTimestamp): void {
      this.#checkWrite();
      const fd = this.#fd;
      const path = this.hostPath!; // a virtual directory is never writable
      try {
        const [a, m] = newTimes(atime, mtime, () => (fd === undefined ? fs.statSync(path) : fs.fstatSync(fd)));
        if (fd === undefined) fs.utimesSync(path, a, m);
        else fs.futimesSync(fd, a, m);
      } catch (err) {
        throw wasiError(err);
      }
    }
    read(len: bigint, offset: bigint): [Uint8Array, boolean] {
      const buf = new Uint8Array(Number(len));
      const n = fs.readSync(this.#file(), buf, 0, buf.length, Number(offset));
      return [buf.subarray(0, n), n === 0];
    }
    write(buf: Uint8Array, offset: bigint): bigint {
      this.#checkWrite();
      return BigInt(fs.writeSync(this.#file(), buf, 0, buf.length, Number(offset)));
    }
    readDirectory() {
      if (!this.hostPath) return new DirectoryEntryStream([]);
      try {
        return new DirectoryEntryStream(fs.readdirSync(this.hostPath, { withFileTypes: true }));
      } catch (err) {
        throw wasiError(err);
      }
    }
    stat() {
      const st = this.#stat();
      return st ? statOf(st) : VIRTUAL_STAT;
    }
    statAt(flags: { symlinkFollow?: boolean }, path: string) {
      const guest = this.#at(path);
      if (isVirtual(guest)) return VIRTUAL_STAT;
      return at(guest, { follow: !!flags?.symlinkFollow, write: false }, (r) => {
        if (!r.exists) throw 'no-entry';
        return statOf(fs.lstatSync(r.hostPath, { bigint: true }));
      });
    }
    setTimesAt(flags: { symlinkFollow?: boolean }, path: string, atime: NewTimestamp, mtime: NewTimestamp): void {
      // Followed, hostPath is the link's real target, so lutimes is right either way.
      at(this.#at(path), { follow: !!flags?.symlinkFollow, write: true }, (r) => {
        if (!r.exists) throw 'no-entry';
        fs.lutimesSync(r.hostPath, ...newTimes(atime, mtime, () => fs.lstatSync(r.hostPath)));
      });
    }
    openAt(
      pathFlags: { symlinkFollow?: boolean },
      path: string,
      openFlags: { create?: boolean; directory?: boolean; exclusive?: boolean; truncate?: boolean },
      flags: { write?: boolean; mutateDirectory?: boolean },
    ) {
      const guest = this.#at(path);
      const wantsWrite = !!(flags?.write || openFlags?.create || openFlags?.truncate);
      if (!wantsWrite && isVirtual(guest)) return new Descriptor(guest, undefined, false);
      return at(guest, { follow: pathFlags?.symlinkFollow !== false, write: wantsWrite || !!flags?.mutateDirectory }, (r) => {
        const st = r.exists ? fs.statSync(r.hostPath) : undefined;
        if (openFlags?.directory || st?.isDirectory()) {
          if (!st) throw 'no-entry';
          if (!st.isDirectory()) throw 'not-directory';
          return new Descriptor(guest, r.hostPath, !r.grant.readonly && !!(flags?.mutateDirectory || flags?.write));
        }
        let mode = flags?.write ? 'r+' : 'r';
        if (openFlags?.create) mode = openFlags.exclusive ? 'wx+' : r.exists ? 'r+' : 'w+';
        const fd = fs.openSync(r.hostPath, mode);
        if (openFlags?.truncate) fs.ftruncateSync(fd, 0);
        return new Descriptor(guest, r.hostPath, !!flags?.write && !r.grant.readonly, fd);
      });
    }
    createDirectoryAt(path: string): void {
      at(this.#at(path), { follow: true, write: true }, (r) => fs.mkdirSync(r.hostPath));
    }
    readlinkAt(path: string): string {
      return at(this.#at(path), { follow: false, write: false }, (r) => fs.readlinkSync(r.hostPath));
    }
    removeDirectoryAt(path: string): void {
      at(this.#at(path), { follow: false, write: true }, (r) => fs.rmdirSync(r.hostPath));
    }
    unlinkFileAt(path: string): void {
      at(this.#at(path), { follow: false, write: true }, (r) => fs.unlinkSync(r.hostPath));
    }
    renameAt(oldPath: string, newDesc: Descriptor, newPath: string): void {
      between(this.#at(oldPath), false, newDesc.#at(newPath), (from, to) => fs.renameSync(from.hostPath, to.hostPath));
    }
    symlinkAt(target: string, path: string): void {
      // Harmless to create wherever it points: every open resolves real paths and checks containment.
      at(this.#at(path), { follow: false, write: true }, (r) => fs.symlinkSync(target, r.hostPath));
    }
    /**
     * A hard link shares its inode, so both ends must be in writable grants: a link from a
     * read-only grant into a writable one would make the read-only file writable.
     */
    linkAt(oldFlags: { symlinkFollow?: boolean }, oldPath: string, newDesc: Descriptor, newPath: string): void {
      between(this.#at(oldPath), !!oldFlags?.symlinkFollow, newDesc.#at(newPath), (from, to) => fs.linkSync(from.hostPath, to.hostPath));
    }
    /** Same host object (dev, inode), so a hard link or another path to it counts; virtual directories by path. */
    isSameObject(other: Descriptor): boolean {
      const [a, b] = [this.#stat(), other.#stat()];
      return a && b ? a.dev === b.dev && a.ino === b.ino : !a && !b && this.guestPath === other.guestPath;
    }
    /** Hashes (dev, inode) of the object, so hard links and repeated opens agree; a virtual directory hashes its path. */
    metadataHash() {
      const st = this.#stat();
      return st ? identityHash(st) : virtualHash(this.guestPath);
    }
    metadataHashAt(flags: { symlinkFollow?: boolean }, path: string) {
      const guest = this.#at(path);
      if (isVirtual(guest)) return virtualHash(guest);
      return at(guest, { follow: !!flags?.symlinkFollow, write: false }, (r) => {
        if (!r.exists) throw 'no-entry';
        return identityHash(fs.lstatSync(r.hostPath, { bigint: true }));
      });
    }
    [Symbol.dispose](): void {
      if (this.#fd !== undefined) fs.closeSync(this.#fd);
      this.#fd = undefined;
    }
  }

  // A virtual root lets the guest name any absolute path, so that attempts outside the grants
  // reach us and are recorded as violations instead of failing silently inside the guest's libc.
  const root = new Descriptor('/', undefined, false);
  const preopened: [Descriptor, string][] = [
    [root, '/'],
    ...grants.map((g) => [new Descriptor(g.guestPath, g.hostPath, !g.readonly), g.guestPath] as [Descriptor, string]),
  ];
  return {
    'wasi:filesystem/preopens': { getDirectories: () => preopened },
    'wasi:filesystem/types': { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
  };
}
