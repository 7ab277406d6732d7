/**
 * HTTP ↔ actor mapping shared by everything that serves actors over HTTP (the gateway and
 * `trellis run`): one way to read a body, to turn a request into an ActorRequest, to write an
 * ActorResponse, to answer an error, and to parse a listen address.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TrellisError, httpStatus } from '../errors/index.ts';
import type { ActorRequest, ActorResponse, Header } from '../wire/index.ts';

/** Read a request body; over `limitBytes` it fails with TRELLIS_PAYLOAD_TOO_LARGE. */
export async function readBody(req: IncomingMessage, limitBytes = Infinity): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limitBytes) throw new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limitBytes}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) throw new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${limitBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Map an HTTP request to an actor request; `stripPrefix` removes a route prefix from the path. */
export function toActorRequest(req: IncomingMessage, body: Uint8Array, stripPrefix = ''): ActorRequest {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const headers: Header[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!.toLowerCase(), req.rawHeaders[i + 1]!]);
  const below = stripPrefix && stripPrefix !== '/' ? path.slice(stripPrefix.length) || '/' : path;
  return { method: req.method ?? 'GET', path: below, query: q < 0 ? '' : url.slice(q + 1), headers, body };
}

/** Write an actor response; `extra` is a flat [name, value, ...] list of headers to add. */
export function writeActorResponse(res: ServerResponse, response: ActorResponse, extra: string[] = []): void {
  const out: string[] = [];
  for (const [name, value] of response.headers) {
    const lower = name.toLowerCase();
    // Framing is ours: the body is complete, so we send our own length.
    if (lower !== 'content-length' && lower !== 'transfer-encoding' && lower !== 'connection') out.push(name, value);
  }
  out.push('content-length', String(response.body.length), ...extra);
  res.writeHead(response.status, out);
  res.end(response.body);
}

/** Answer an error: the status from the error registry, body `{ error: { code, message, hint } }`. */
export function writeError(res: ServerResponse, error: TrellisError, extra: string[] = []): number {
  const status = httpStatus(error.code);
  const body = Buffer.from(JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint } }));
  writeActorResponse(res, { status, headers: [['content-type', 'application/json']], body }, extra);
  return status;
}

/** Parse `host:port`, `:port` or `port` (port 0 picks a free one); TRELLIS_BAD_OPTION names `option`. */
export function parseListen(listen: string, option = '--listen', defaultHost = '127.0.0.1'): { host: string; port: number } {
  const m = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new TrellisError('TRELLIS_BAD_OPTION', `${option} "${listen}" is not host:port`);
  return { host: m[1] || (listen.startsWith(':') ? '0.0.0.0' : defaultHost), port };
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * Whether an actor's policy lets it reach `url`: a pattern is a host (any port), `host:port`
 * (the URL's port, or its scheme's default), or `*.domain`; compared case-insensitively. The
 * one check for the sandbox (before any capability call) and the http-client provider.
 */
export function hostAllowed(allowedHosts: string[], url: URL): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port || DEFAULT_PORTS[url.protocol];
  return allowedHosts.some((pattern) => {
    const p = pattern.toLowerCase();
    return p.startsWith('*.') ? host.endsWith(p.slice(1)) : p === host || (port !== undefined && p === `${host}:${port}`);
  });
}
