/**
 * The WASI 0.2 imports an actor may use, implemented inside the actor's worker thread, deny by
 * default. One implementation serves every 0.2.x version. Nothing here touches the host's real
 * environment, and the file system is only reachable through the policy's directory grants with
 * real-path containment checks (symlinks cannot lead out of a grant).
 *
 * Error conventions of jco bindings: throwing a non-Error value from an import that returns
 * `result<_, E>` becomes `err(value)`; throwing an Error traps the guest.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomFillSync } from 'node:crypto';
import { hostAllowed } from '../../lattice/http/index.ts';
import { normalizeGuestPath } from './paths.ts';

/** What the worker's sandbox knows of its policy (values resolved on the main thread). */
export interface SandboxConfig {
  actor: string;
  env: [string, string][];
  allowedEnvVars: string[];
  allowedHosts: string[];
  /** hostPath is already a real path. */
  dirs: { guestPath: string; hostPath: string; readonly: boolean }[];
}

/** The services the worker provides to the WASI layer. */
export interface SandboxHost {
  /**
   * Record a policy violation of the current invocation. An escape attempt (`permission denied`)
   * outranks a write to a read-only grant; otherwise the first one wins.
   */
  violation(message: string): void;
  /** A line the guest wrote to stdout/stderr. */
  output(stream: 'stdout' | 'stderr', line: string): void;
  /** Send an HTTP request through the host capability (blocking). */
  httpSend(req: OutgoingHttp): { status: number; headers: [string, string][]; body: Uint8Array };
}

export interface OutgoingHttp {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// wasi:io

class IoError {
  constructor(readonly message: string) {}
  toDebugString(): string {
    return this.message;
  }
}

/** A pollable: `ready` tells, `block` waits (synchronously: this thread runs one guest). */
class Pollable {
  constructor(
    readonly isReady: () => boolean = () => true,
    readonly wait: () => void = () => {},
  ) {}
  ready(): boolean {
    return this.isReady();
  }
  block(): void {
    if (!this.isReady()) this.wait();
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepNs(ns: bigint): void {
  if (ns > 0n) Atomics.wait(sleeper, 0, 0, Number(ns) / 1e6);
}

function timer(deadlineNs: bigint): Pollable {
  return new Pollable(
    () => process.hrtime.bigint() >= deadlineNs,
    () => sleepNs(deadlineNs - process.hrtime.bigint()),
  );
}

function poll(list: Pollable[]): Uint32Array {
  for (;;) {
    const ready: number[] = [];
    list.forEach((p, i) => p.ready() && ready.push(i));
    if (ready.length > 0) return Uint32Array.from(ready);
    // Nothing ready: block on one; the first is as good as any since all are synchronous.
    list[0]!.block();
  }
}

const closed = { tag: 'closed' } as const;

/** Reads from a pull function; `undefined` from it means end of stream. */
class InputStream {
  #pending: Uint8Array | undefined;
  #done = false;
  constructor(readonly pull: (max: number) => Uint8Array | undefined) {}
  read(len: bigint): Uint8Array {
    if (this.#pending === undefined && !this.#done) {
      this.#pending = this.pull(Number(len));
      if (this.#pending === undefined) this.#done = true;
    }
    if (this.#pending === undefined) throw closed;
    const n = Math.min(Number(len), this.#pending.length);
    const out = this.#pending.subarray(0, n);
    this.#pending = n < this.#pending.length ? this.#pending.subarray(n) : undefined;
    return out;
  }
  blockingRead(len: bigint): Uint8Array {
    return this.read(len);
  }
  skip(len: bigint): bigint {
    return BigInt(this.read(len).length);
  }
  blockingSkip(len: bigint): bigint {
    return this.skip(len);
  }
  subscribe(): Pollable {
    return new Pollable();
  }
}

/** Fully-buffered input. */
function bytesStream(bytes: Uint8Array): InputStream {
  let offset = 0;
  return new InputStream((max) => {
    if (offset >= bytes.length) return undefined;
    const out = bytes.subarray(offset, offset + max);
    offset += out.length;
    return out;
  });
}

/** Writes to a push function that may throw a stream error. */
class OutputStream {
  constructor(readonly push: (bytes: Uint8Array) => void) {}
  checkWrite(): bigint {
    return 1n << 20n;
  }
  write(buf: Uint8Array): void {
    this.push(buf.slice());
  }
  blockingWriteAndFlush(buf: Uint8Array): void {
    this.write(buf);
  }
  flush(): void {}
  blockingFlush(): void {}
  writeZeroes(len: bigint): void {
    this.push(new Uint8Array(Number(len)));
  }
  blockingWriteZeroesAndFlush(len: bigint): void {
    this.writeZeroes(len);
  }
  splice(src: InputStream, len: bigint): bigint {
    const chunk = src.read(len);
    this.push(chunk.slice());
    return BigInt(chunk.length);
  }
  blockingSplice(src: InputStream, len: bigint): bigint {
    return this.splice(src, len);
  }
  subscribe(): Pollable {
    return new Pollable();
  }
}

// ---------------------------------------------------------------------------------------------
// wasi:filesystem

type Grant = SandboxConfig['dirs'][number];
type FsError = string;

function fsCode(err: unknown): FsError {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no-entry';
    case 'EEXIST':
      return 'exist';
    case 'ENOTDIR':
      return 'not-directory';
    case 'EISDIR':
      return 'is-directory';
    case 'ENOTEMPTY':
      return 'not-empty';
    case 'EACCES':
      return 'access';
    case 'EPERM':
      return 'not-permitted';
    case 'ELOOP':
      return 'loop';
    case 'ENAMETOOLONG':
      return 'name-too-long';
    case 'EINVAL':
      return 'invalid';
    default:
      return 'io';
  }
}

function typeOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'regular-file';
  if (st.isSymbolicLink()) return 'symbolic-link';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  return 'unknown';
}

function ts(ms: number) {
  const seconds = BigInt(Math.floor(ms / 1000));
  return { seconds, nanoseconds: Math.round((ms % 1000) * 1e6) };
}

function statOf(st: fs.Stats) {
  return {
    type: typeOf(st),
    linkCount: BigInt(st.nlink),
    size: BigInt(st.size),
    dataAccessTimestamp: ts(st.atimeMs),
    dataModificationTimestamp: ts(st.mtimeMs),
    statusChangeTimestamp: ts(st.ctimeMs),
  };
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : root + '/');
}

/** Builds the filesystem interfaces for one sandbox. */
function filesystem(cfg: SandboxConfig, host: SandboxHost) {
  const grants = [...cfg.dirs].sort((a, b) => b.guestPath.length - a.guestPath.length);

  const deny = (guestPath: string): never => {
    host.violation(`permission denied: ${guestPath}`);
    throw 'access';
  };
  const denyWrite = (grant: Grant | undefined): void => {
    if (grant && !grant.readonly) return;
    host.violation('sandbox violation: fs write');
    throw 'read-only';
  };

  /**
   * Map a guest path to a host path inside its grant, denying anything outside: the real path
   * of the target (or of its deepest existing ancestor, for creation) must stay in the grant.
   */
  const resolve = (guestPath: string, followFinal = true): { grant: Grant; hostPath: string; exists: boolean } => {
    const grant = grants.find((g) => inside(g.guestPath, guestPath));
    if (!grant) return deny(guestPath);
    const lexical = join(grant.hostPath, guestPath.slice(grant.guestPath.length));
    const check = (real: string, exists: boolean) => {
      if (!inside(grant.hostPath, real)) deny(guestPath);
      return { grant, hostPath: real, exists };
    };
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(lexical);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsCode(err);
    }
    if (st && (followFinal || !st.isSymbolicLink())) {
      try {
        return check(fs.realpathSync(lexical), true);
      } catch (err) {
        if (typeof err === 'string') throw err;
        // A dangling link: refuse it if it points outside (creating through it would escape).
        const target = join(lexical, '..', fs.readlinkSync(lexical));
        check(target, false);
        throw 'no-entry';
      }
    }
    // The link itself, or a path to create: its deepest existing ancestor decides.
    const rest: string[] = [];
    let probe = lexical;
    for (;;) {
      rest.unshift(probe.slice(probe.lastIndexOf('/') + 1));
      probe = join(probe, '..');
      try {
        return check(join(fs.realpathSync(probe), ...rest), !!st);
      } catch (err) {
        if (typeof err === 'string') throw err;
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !inside(grant.hostPath, probe)) throw 'no-entry';
      }
    }
  };

  class DirectoryEntryStream {
    #entries: fs.Dirent[];
    constructor(entries: fs.Dirent[]) {
      this.#entries = entries;
    }
    readDirectoryEntry() {
      const e = this.#entries.shift();
      if (!e) return undefined;
      return { type: e.isDirectory() ? 'directory' : e.isFile() ? 'regular-file' : e.isSymbolicLink() ? 'symbolic-link' : 'unknown', name: e.name };
    }
  }

  class Descriptor {
    #fd: number | undefined;
    constructor(
      readonly guestPath: string,
      readonly grant: Grant | undefined,
      readonly hostPath: string | undefined,
      readonly writable: boolean,
      fd?: number,
    ) {
      this.#fd = fd;
    }
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
    setTimes(): void {
      this.#checkWrite();
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
        throw fsCode(err);
      }
    }
    stat() {
      if (!this.hostPath) return statOf(fs.statSync('/'));
      return statOf(this.#fd === undefined ? fs.statSync(this.hostPath) : fs.fstatSync(this.#fd));
    }
    statAt(flags: { symlinkFollow?: boolean }, path: string) {
      const guest = this.#at(path);
      if (grants.some((g) => inside(guest, g.guestPath) && guest !== g.guestPath)) return statOf(fs.statSync('/'));
      const r = resolve(guest, !!flags?.symlinkFollow);
      if (!r.exists) throw 'no-entry';
      return statOf(fs.lstatSync(r.hostPath));
    }
    setTimesAt(_flags: unknown, path: string): void {
      denyWrite(resolve(this.#at(path)).grant);
    }
    openAt(pathFlags: { symlinkFollow?: boolean }, path: string, openFlags: { create?: boolean; directory?: boolean; exclusive?: boolean; truncate?: boolean }, flags: { write?: boolean; mutateDirectory?: boolean }) {
      const guest = this.#at(path);
      const wantsWrite = !!(flags?.write || openFlags?.create || openFlags?.truncate);
      // The virtual parents of grants (e.g. `/` of `/data`) are empty, read-only directories.
      if (!wantsWrite && grants.some((g) => inside(guest, g.guestPath) && guest !== g.guestPath)) {
        return new Descriptor(guest, undefined, undefined, false);
      }
      const r = resolve(guest, pathFlags?.symlinkFollow !== false);
      if (wantsWrite || flags?.mutateDirectory) denyWrite(r.grant);
      try {
        const st = r.exists ? fs.statSync(r.hostPath) : undefined;
        if (openFlags?.directory || st?.isDirectory()) {
          if (!st) throw 'no-entry';
          if (!st.isDirectory()) throw 'not-directory';
          return new Descriptor(guest, r.grant, r.hostPath, !r.grant.readonly && !!(flags?.mutateDirectory || flags?.write));
        }
        let mode = flags?.write ? 'r+' : 'r';
        if (openFlags?.create) mode = openFlags.exclusive ? 'wx+' : r.exists ? 'r+' : 'w+';
        const fd = fs.openSync(r.hostPath, mode);
        if (openFlags?.truncate) fs.ftruncateSync(fd, 0);
        return new Descriptor(guest, r.grant, r.hostPath, !!flags?.write && !r.grant.readonly, fd);
      } catch (err) {
        throw typeof err === 'string' ? err : fsCode(err);
      }
    }
    createDirectoryAt(path: string): void {
      const r = resolve(this.#at(path));
      denyWrite(r.grant);
      try {
        fs.mkdirSync(r.hostPath);
      } catch (err) {
        throw fsCode(err);
      }
    }
    readlinkAt(path: string): string {
      const r = resolve(this.#at(path), false);
      try {
        return fs.readlinkSync(r.hostPath);
      } catch (err) {
        throw fsCode(err);
      }
    }
    removeDirectoryAt(path: string): void {
      const r = resolve(this.#at(path), false);
      denyWrite(r.grant);
      try {
        fs.rmdirSync(r.hostPath);
      } catch (err) {
        throw fsCode(err);
      }
    }
    unlinkFileAt(path: string): void {
      const r = resolve(this.#at(path), false);
      denyWrite(r.grant);
      try {
        fs.unlinkSync(r.hostPath);
      } catch (err) {
        throw fsCode(err);
      }
    }
    renameAt(oldPath: string, newDesc: Descriptor, newPath: string): void {
      const from = resolve(this.#at(oldPath), false);
      const to = resolve(newDesc.#at(newPath), false);
      denyWrite(from.grant);
      denyWrite(to.grant);
      try {
        fs.renameSync(from.hostPath, to.hostPath);
      } catch (err) {
        throw fsCode(err);
      }
    }
    symlinkAt(target: string, path: string): void {
      const r = resolve(this.#at(path), false);
      denyWrite(r.grant);
      // Harmless to create wherever it points: every open resolves real paths and checks containment.
      try {
        fs.symlinkSync(target, r.hostPath);
      } catch (err) {
        throw fsCode(err);
      }
    }
    linkAt(): void {
      denyWrite(undefined);
    }
    isSameObject(other: Descriptor): boolean {
      return other.guestPath === this.guestPath;
    }
    metadataHash() {
      return { lower: 0n, upper: BigInt(this.guestPath.length) };
    }
    metadataHashAt(_flags: unknown, path: string) {
      const st = fs.statSync(resolve(this.#at(path)).hostPath);
      return { lower: BigInt(st.ino), upper: BigInt(st.dev) };
    }
    [Symbol.dispose](): void {
      if (this.#fd !== undefined) fs.closeSync(this.#fd);
      this.#fd = undefined;
    }
  }

  // A virtual root lets the guest name any absolute path, so that attempts outside the grants
  // reach us and are recorded as violations instead of failing silently inside the guest's libc.
  const root = new Descriptor('/', undefined, undefined, false);
  const preopened: [Descriptor, string][] = [
    [root, '/'],
    ...cfg.dirs.map((g) => [new Descriptor(g.guestPath, g, g.hostPath, !g.readonly), g.guestPath] as [Descriptor, string]),
  ];
  return {
    preopens: { getDirectories: () => preopened },
    types: { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
  };
}

// ---------------------------------------------------------------------------------------------
// wasi:http

type Method = { tag: string; val?: string };
const METHODS = ['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch'];

function methodOf(m: string): Method {
  const l = m.toLowerCase();
  return METHODS.includes(l) ? { tag: l } : { tag: 'other', val: m };
}
function methodName(m: Method): string {
  return m.tag === 'other' ? m.val! : m.tag.toUpperCase();
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

class Fields {
  #entries: [string, Uint8Array][] = [];
  #immutable = false;
  static fromList(entries: [string, Uint8Array][]): Fields {
    const f = new Fields();
    for (const [k, v] of entries) f.#entries.push([k.toLowerCase(), v]);
    return f;
  }
  static frozen(entries: [string, string][]): Fields {
    const f = Fields.fromList(entries.map(([k, v]) => [k, utf8.encode(v)]));
    f.#immutable = true;
    return f;
  }
  #mutate(): void {
    if (this.#immutable) throw { tag: 'immutable' };
  }
  get(name: string): Uint8Array[] {
    const n = name.toLowerCase();
    return this.#entries.filter(([k]) => k === n).map(([, v]) => v);
  }
  has(name: string): boolean {
    return this.get(name).length > 0;
  }
  set(name: string, values: Uint8Array[]): void {
    this.#mutate();
    this.delete(name);
    for (const v of values) this.#entries.push([name.toLowerCase(), v]);
  }
  delete(name: string): void {
    this.#mutate();
    const n = name.toLowerCase();
    this.#entries = this.#entries.filter(([k]) => k !== n);
  }
  append(name: string, value: Uint8Array): void {
    this.#mutate();
    this.#entries.push([name.toLowerCase(), value]);
  }
  entries(): [string, Uint8Array][] {
    return this.#entries.map(([k, v]) => [k, v]);
  }
  clone(): Fields {
    return Fields.fromList(this.#entries);
  }
  pairs(): [string, string][] {
    return this.#entries.map(([k, v]) => [k, fromUtf8.decode(v)]);
  }
  freeze(): this {
    this.#immutable = true;
    return this;
  }
}

class FutureTrailers {
  subscribe(): Pollable {
    return new Pollable();
  }
  get() {
    return { tag: 'ok', val: { tag: 'ok', val: undefined } };
  }
}

class IncomingBody {
  #stream: InputStream | undefined;
  constructor(stream: InputStream) {
    this.#stream = stream;
  }
  stream(): InputStream {
    const s = this.#stream;
    if (!s) throw undefined;
    this.#stream = undefined;
    return s;
  }
  static finish(): FutureTrailers {
    return new FutureTrailers();
  }
}

/** What an incoming request and an incoming response share: frozen headers and a body taken once. */
class IncomingMessage {
  readonly #headers: Fields;
  #body: IncomingBody | undefined;
  constructor(message: { headers: [string, string][]; body: Uint8Array }) {
    this.#headers = Fields.frozen(message.headers);
    this.#body = new IncomingBody(bytesStream(message.body));
  }
  headers(): Fields {
    return this.#headers;
  }
  consume(): IncomingBody {
    const b = this.#body;
    if (!b) throw undefined;
    this.#body = undefined;
    return b;
  }
}

/** The request handed to a wasi:http guest. */
export class IncomingRequest extends IncomingMessage {
  constructor(readonly req: { method: string; path: string; query: string; headers: [string, string][]; body: Uint8Array }) {
    super(req);
  }
  method(): Method {
    return methodOf(this.req.method === 'CALL' ? 'POST' : this.req.method);
  }
  pathWithQuery(): string {
    return this.req.query ? `${this.req.path}?${this.req.query}` : this.req.path;
  }
  scheme() {
    return { tag: 'HTTP' };
  }
  authority(): string {
    return this.headers().get('host').map((v) => fromUtf8.decode(v))[0] ?? 'localhost';
  }
}

class OutgoingBody {
  readonly chunks: Uint8Array[] = [];
  finished = false;
  #taken = false;
  write(): OutputStream {
    if (this.#taken) throw undefined;
    this.#taken = true;
    return new OutputStream((b) => {
      if (this.finished) throw closed;
      this.chunks.push(b);
    });
  }
  static finish(body: OutgoingBody): void {
    body.finished = true;
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

class OutgoingResponse {
  status = 200;
  readonly #headers: Fields;
  body_: OutgoingBody | undefined;
  constructor(headers: Fields) {
    this.#headers = headers.freeze();
  }
  statusCode(): number {
    return this.status;
  }
  setStatusCode(code: number): void {
    if (code < 100 || code > 999) throw undefined;
    this.status = code;
  }
  headers(): Fields {
    return this.#headers;
  }
  body(): OutgoingBody {
    if (this.body_) throw undefined;
    this.body_ = new OutgoingBody();
    return this.body_;
  }
}

/** Receives the guest's response. */
export class ResponseOutparam {
  result: { tag: 'ok'; val: OutgoingResponse } | { tag: 'err'; val: { tag: string; val?: unknown } } | undefined;
  static set(param: ResponseOutparam, result: ResponseOutparam['result']): void {
    param.result = result;
  }
  /** The response as wire fields, once set and its body finished. */
  response(): { status: number; headers: [string, string][]; body: Uint8Array } | { error: string } | undefined {
    const r = this.result;
    if (!r) return undefined;
    if (r.tag === 'err') return { error: `wasi:http error ${r.val.tag}${r.val.val === undefined ? '' : `: ${JSON.stringify(r.val.val)}`}` };
    const res = r.val;
    return { status: res.status, headers: res.headers().pairs(), body: res.body_ ? res.body_.bytes() : new Uint8Array() };
  }
}

class RequestOptions {
  connectTimeout() {
    return undefined;
  }
  setConnectTimeout(): void {}
  firstByteTimeout() {
    return undefined;
  }
  setFirstByteTimeout(): void {}
  betweenBytesTimeout() {
    return undefined;
  }
  setBetweenBytesTimeout(): void {}
}

class OutgoingRequest {
  method_: Method = { tag: 'get' };
  path: string | undefined;
  scheme_: { tag: string; val?: string } | undefined;
  authority_: string | undefined;
  readonly #headers: Fields;
  body_: OutgoingBody | undefined;
  constructor(headers: Fields) {
    this.#headers = headers.freeze();
  }
  method() {
    return this.method_;
  }
  setMethod(m: Method): void {
    this.method_ = m;
  }
  pathWithQuery() {
    return this.path;
  }
  setPathWithQuery(p: string | undefined): void {
    this.path = p;
  }
  scheme() {
    return this.scheme_;
  }
  setScheme(s: { tag: string; val?: string } | undefined): void {
    this.scheme_ = s;
  }
  authority() {
    return this.authority_;
  }
  setAuthority(a: string | undefined): void {
    this.authority_ = a;
  }
  headers(): Fields {
    return this.#headers;
  }
  body(): OutgoingBody {
    if (this.body_) throw undefined;
    this.body_ = new OutgoingBody();
    return this.body_;
  }
}

class IncomingResponse extends IncomingMessage {
  constructor(readonly res: { status: number; headers: [string, string][]; body: Uint8Array }) {
    super(res);
  }
  status(): number {
    return this.res.status;
  }
}

/** The response to an outgoing request, sent when the guest first waits for it (its body is complete by then). */
class FutureIncomingResponse {
  #result: unknown;
  #done = false;
  #taken = false;
  constructor(readonly send: () => unknown) {}
  #resolve(): void {
    if (!this.#done) {
      this.#result = this.send();
      this.#done = true;
    }
  }
  subscribe(): Pollable {
    return new Pollable(() => this.#done, () => this.#resolve());
  }
  get() {
    if (!this.#done) return undefined;
    if (this.#taken) return { tag: 'err', val: undefined };
    this.#taken = true;
    return { tag: 'ok', val: this.#result };
  }
}

function http(cfg: SandboxConfig, host: SandboxHost) {
  const handle = (req: OutgoingRequest) => {
    const authority = req.authority_ ?? '';
    const scheme = req.scheme_?.tag === 'HTTPS' ? 'https' : req.scheme_?.tag === 'other' ? req.scheme_.val : 'http';
    const url = URL.canParse(`${scheme}://${authority}${req.path ?? '/'}`) ? new URL(`${scheme}://${authority}${req.path ?? '/'}`) : undefined;
    if (!url || !hostAllowed(cfg.allowedHosts, url)) {
      host.violation(`host not allowed: ${url?.hostname ?? authority}`);
      throw { tag: 'HTTP-request-denied' };
    }
    return new FutureIncomingResponse(() => {
      try {
        const res = host.httpSend({
          method: methodName(req.method_),
          url: url.href,
          headers: req.headers().pairs(),
          body: req.body_ ? req.body_.bytes() : new Uint8Array(),
        });
        return { tag: 'ok', val: new IncomingResponse(res) };
      } catch (err) {
        return { tag: 'err', val: { tag: 'internal-error', val: String(err) } };
      }
    });
  };
  return {
    types: {
      Fields,
      FutureTrailers,
      IncomingBody,
      IncomingRequest,
      IncomingResponse,
      OutgoingBody,
      OutgoingRequest,
      OutgoingResponse,
      RequestOptions,
      ResponseOutparam,
      FutureIncomingResponse,
      httpErrorCode: () => undefined,
    },
    outgoingHandler: { handle },
  };
}

// ---------------------------------------------------------------------------------------------

/** A guest called wasi:cli/exit: ends the invocation (as a trap) and the instance. */
class GuestExit extends Error {
  constructor(readonly code: number) {
    super(`exit called with status ${code}`);
  }
}

function lineSink(stream: 'stdout' | 'stderr', host: SandboxHost): OutputStream {
  let partial = '';
  return new OutputStream((bytes) => {
    const lines = (partial + fromUtf8.decode(bytes)).split('\n');
    partial = lines.pop()!;
    for (const l of lines) host.output(stream, l);
  });
}

/**
 * All WASI interfaces keyed by unversioned name (`wasi:io/streams`); `importsFor` maps any
 * `@0.2.x` key onto them.
 */
export function wasiImports(cfg: SandboxConfig, host: SandboxHost): Record<string, Record<string, unknown>> {
  const stdout = lineSink('stdout', host);
  const stderr = lineSink('stderr', host);
  const stdin = bytesStream(new Uint8Array());
  const fsys = filesystem(cfg, host);
  const h = http(cfg, host);
  class TerminalInput {}
  class TerminalOutput {}
  const randomU64 = () => randomBytes(8).readBigUInt64LE();
  return {
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': { Pollable, poll },
    'wasi:io/streams': { InputStream, OutputStream },
    'wasi:cli/environment': {
      getEnvironment: () => cfg.env,
      getArguments: () => [],
      initialCwd: () => undefined,
    },
    'wasi:cli/exit': {
      exit: (status: { tag: string }) => {
        throw new GuestExit(status.tag === 'ok' ? 0 : 1);
      },
      exitWithCode: (code: number) => {
        throw new GuestExit(code);
      },
    },
    'wasi:cli/stdin': { getStdin: () => stdin },
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
    'wasi:clocks/monotonic-clock': {
      now: () => process.hrtime.bigint(),
      resolution: () => 1000n,
      subscribeInstant: (when: bigint) => timer(when),
      subscribeDuration: (d: bigint) => timer(process.hrtime.bigint() + d),
    },
    'wasi:clocks/wall-clock': {
      now: () => ts(Date.now()),
      resolution: () => ({ seconds: 0n, nanoseconds: 1_000_000 }),
    },
    'wasi:random/random': {
      getRandomBytes: (len: bigint) => randomFillSync(new Uint8Array(Number(len))),
      getRandomU64: randomU64,
    },
    'wasi:random/insecure': {
      getInsecureRandomBytes: (len: bigint) => randomFillSync(new Uint8Array(Number(len))),
      getInsecureRandomU64: randomU64,
    },
    'wasi:random/insecure-seed': { insecureSeed: () => [randomU64(), randomU64()] },
    'wasi:filesystem/preopens': fsys.preopens,
    'wasi:filesystem/types': fsys.types,
    'wasi:http/types': h.types,
    'wasi:http/outgoing-handler': h.outgoingHandler,
    // Sockets are never granted: the interfaces exist so components that import them still load.
    'wasi:sockets/network': { Network: class Network {} },
    'wasi:sockets/instance-network': { instanceNetwork: () => { throw 'access-denied'; } },
  };
}
