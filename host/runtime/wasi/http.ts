/**
 * wasi:http: the request handed to a wasi:http/proxy guest and its response, and outgoing
 * requests, which go through the host's HTTP capability after the policy's host check.
 */
import { hostAllowed } from '../../../lattice/http/index.ts';
import { bytesStream, closed, InputStream, OutputStream, Pollable } from './streams.ts';
import type { SandboxConfig, SandboxHost } from './types.ts';

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

/** What an outgoing request and an outgoing response share: headers frozen at construction and a body made once. */
class OutgoingMessage {
  readonly #headers: Fields;
  body_: OutgoingBody | undefined;
  constructor(headers: Fields) {
    this.#headers = headers.freeze();
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

class OutgoingResponse extends OutgoingMessage {
  status = 200;
  statusCode(): number {
    return this.status;
  }
  setStatusCode(code: number): void {
    if (code < 100 || code > 999) throw undefined;
    this.status = code;
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

class OutgoingRequest extends OutgoingMessage {
  method_: Method = { tag: 'get' };
  path: string | undefined;
  scheme_: { tag: string; val?: string } | undefined;
  authority_: string | undefined;
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

/** The wasi:http interfaces of one sandbox. */
export function httpImports(cfg: SandboxConfig, host: SandboxHost) {
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
    'wasi:http/types': {
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
    'wasi:http/outgoing-handler': { handle },
  };
}
