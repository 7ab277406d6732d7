/**
 * Wire types of an actor invocation, shared by the runtime, the RPC client, the gateway, the CLI
 * and tests. Dependency-free on purpose: these shapes are the contract between processes.
 */
import { TrellisError } from '../errors/index.ts';
import { decode, isRecord } from './codec.ts';
import { RPC_WIRE_LIMITS } from './limits.ts';

/** One header as a name/value pair; repeated names are allowed, order is kept. */
export type Header = [name: string, value: string];

/**
 * What an actor receives. HTTP requests fill every field; plain byte calls (CLI, actor to actor)
 * use method `CALL`, path `/`, and just the body.
 */
export interface ActorRequest {
  method: string;
  path: string;
  query: string;
  headers: Header[];
  body: Uint8Array;
}

/** What an actor answers. */
export interface ActorResponse {
  status: number;
  headers: Header[];
  body: Uint8Array;
}

/** A request with every optional field filled in (senders may leave out empty ones). */
export function normalizeRequest(r: ActorRequest): ActorRequest {
  return { method: r.method, path: r.path || '/', query: r.query ?? '', headers: r.headers ?? [], body: r.body ?? new Uint8Array() };
}

/** Build a plain byte call (no HTTP semantics). */
export function bytesRequest(body: Uint8Array | string): ActorRequest {
  return {
    method: 'CALL',
    path: '/',
    query: '',
    headers: [],
    body: typeof body === 'string' ? new TextEncoder().encode(body) : body,
  };
}

/** Longest method name of an invocation (HTTP methods are short tokens; CALL for byte calls). */
const MAX_METHOD_LENGTH = 32;

function badInvocation(what: string, field: string, message: string): never {
  throw new TrellisError('TRELLIS_BAD_REQUEST', `${what}.${field}: ${message}`);
}

/**
 * Check a decoded invocation body and return it as a complete ActorRequest (absent optional
 * fields filled in, unknown fields left behind), or throw TRELLIS_BAD_REQUEST naming the field.
 * Hand-written, not schema.ts: it runs on every call, and allocates only the result.
 */
export function checkActorRequest(value: unknown, what = 'invocation'): ActorRequest {
  if (!isRecord(value)) throw new TrellisError('TRELLIS_BAD_REQUEST', `${what}: must be a msgpack map (an ActorRequest)`);
  const { method, path, query, headers, body } = value as Partial<Record<keyof ActorRequest, unknown>>;
  if (typeof method !== 'string' || method.length === 0 || method.length > MAX_METHOD_LENGTH) badInvocation(what, 'method', `must be a string of 1 to ${MAX_METHOD_LENGTH} characters`);
  if (path != null && typeof path !== 'string') badInvocation(what, 'path', 'must be a string');
  if (query != null && typeof query !== 'string') badInvocation(what, 'query', 'must be a string');
  if (body != null && !(body instanceof Uint8Array)) badInvocation(what, 'body', 'must be binary');
  if (headers != null) {
    if (!Array.isArray(headers)) badInvocation(what, 'headers', 'must be a list of [name, value] pairs');
    for (let i = 0; i < headers.length; i++) {
      const h: unknown = headers[i];
      if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string') badInvocation(what, `headers[${i}]`, 'must be a [name, value] pair of strings');
    }
  }
  return { method, path: (path as string) || '/', query: (query as string) ?? '', headers: (headers as Header[]) ?? [], body: (body as Uint8Array) ?? EMPTY };
}

const EMPTY = new Uint8Array(0);

/** Decode an invocation body within the RPC limits and check it (see checkActorRequest). */
export function decodeActorRequest(bytes: Uint8Array, what = 'invocation'): ActorRequest {
  return checkActorRequest(decode(bytes, what, RPC_WIRE_LIMITS), what);
}
