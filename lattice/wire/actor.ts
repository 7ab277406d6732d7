/**
 * Wire types of an actor invocation, shared by the runtime, the RPC client, the gateway, the CLI
 * and tests. Dependency-free on purpose: these shapes are the contract between processes.
 */

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
