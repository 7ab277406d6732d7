/**
 * The one registry of Trellis error codes. Every failure that crosses a process or API boundary
 * carries one of these stable codes, so callers (CLI, gateway, tests, scripts) branch on the code
 * and never on message text. The gateway maps codes to HTTP statuses from `httpStatus` below.
 */

/**
 * What a caller may do after a failure, decided once per code here and used by the RPC client,
 * the control client and the providers alike:
 * - `never`: the request itself is wrong or was refused; sending it again gives the same answer.
 * - `elsewhere`: nobody took the request (no responders, overloaded replica); another target may
 *   take it at once without any risk of running it twice.
 * - `unsure`: the request may have been taken (a time-out): only an idempotent request, or one
 *   whose taker is known to be gone, may be sent again.
 * - `later`: the lattice itself is unavailable; the same request may succeed after a pause.
 */
export type RetryClass = 'never' | 'elsewhere' | 'unsure' | 'later';

/** Stable error codes with a one-line meaning and what the user can do about it. */
export const ErrorCodes = {
  TRELLIS_BAD_REQUEST: { http: 400, retry: 'never', hint: 'fix the request; the message names the bad field' },
  TRELLIS_BAD_OPTION: { http: 400, retry: 'never', hint: 'fix the named option or environment variable' },
  TRELLIS_UNKNOWN_COMMAND: { http: 400, retry: 'never', hint: 'run `trellis --help` for the commands this version knows' },
  TRELLIS_WRONG_LATTICE: { http: 400, retry: 'never', hint: 'send to the lattice the host belongs to (--lattice)' },
  TRELLIS_PAYLOAD_TOO_LARGE: { http: 413, retry: 'never', hint: 'send a smaller payload or raise the limit' },
  TRELLIS_NOT_FOUND: { http: 404, retry: 'never', hint: 'check the name or id with `trellis get ...`' },
  TRELLIS_NO_ROUTE: { http: 404, retry: 'never', hint: 'add a route: `trellis http route add <prefix> <actor>`' },
  TRELLIS_UNKNOWN_VERSION: { http: 404, retry: 'never', hint: 'that version runs nowhere in the lattice; see `trellis get actors` for the versions that do' },
  TRELLIS_NO_RESPONDERS: { http: 503, retry: 'elsewhere', hint: 'start an instance (`trellis start actor`) or check that hosts are up' },
  TRELLIS_TIMEOUT: { http: 504, retry: 'unsure', hint: 'the peer did not answer in time; check that it is up and not overloaded' },
  TRELLIS_DEADLINE_EXCEEDED: { http: 504, retry: 'unsure', hint: 'raise the deadline or make the actor faster' },
  TRELLIS_NATS_UNAVAILABLE: { http: 503, retry: 'later', hint: 'check the NATS URL and that nats-server runs' },
  TRELLIS_NATS_MISSING: { http: 500, retry: 'never', hint: 'install nats-server (Debian: apt-get install nats-server)' },
  TRELLIS_INTERNAL: { http: 500, retry: 'never', hint: 'a bug: please report it with the logs' },
  // Actor runtime and sandbox.
  TRELLIS_ACTOR_ERROR: { http: 502, retry: 'never', hint: 'the actor returned an error; see its message' },
  TRELLIS_LOAD_FAILED: { http: 502, retry: 'never', hint: 'the module is not a valid WebAssembly component for a supported world' },
  TRELLIS_WASM_TRAP: { http: 502, retry: 'never', hint: 'the actor trapped; check its code' },
  TRELLIS_OUT_OF_MEMORY: { http: 502, retry: 'never', hint: 'raise maxMemoryPages in the policy or use less memory' },
  TRELLIS_TIME_LIMIT: { http: 504, retry: 'never', hint: 'raise executionTimeoutMs in the policy or make the actor faster' },
  TRELLIS_SANDBOX_VIOLATION: { http: 502, retry: 'never', hint: 'grant the access in the actor policy (allowedHosts, allowedEnvVars, allowedDirs)' },
  TRELLIS_NOT_LINKED: { http: 502, retry: 'never', hint: 'link the actor to a provider: `trellis link put <actor> <provider>`' },
  TRELLIS_OVERLOADED: { http: 503, retry: 'elsewhere', hint: 'the actor is at max concurrency; scale it out or retry' },
  // Lattice state.
  TRELLIS_DIGEST_NOT_FOUND: { http: 404, retry: 'never', hint: 'push the component first: `trellis push <file.wasm>`' },
  TRELLIS_DIGEST_MISMATCH: { http: 502, retry: 'never', hint: 'the stored artifact is corrupt; push it again' },
  TRELLIS_BAD_WEIGHTS: { http: 400, retry: 'never', hint: 'weights are version=percent pairs of known versions summing to 100' },
  TRELLIS_FILE_UNREADABLE: { http: 400, retry: 'never', hint: 'check the file path and its permissions' },
  TRELLIS_NATS_AUTH: { http: 503, retry: 'never', hint: 'check the NATS credentials (--nats-creds, --nats-nkey, --nats-user/--nats-password, --nats-token) and the TLS files' },
  TRELLIS_PERMISSION_DENIED: { http: 403, retry: 'never', hint: 'the NATS credential lacks permission for this subject; use a credential of the right role' },
  TRELLIS_RATE_LIMITED: { http: 429, retry: 'later', hint: 'this caller sends commands faster than the host admits (--control-rate, --control-burst): wait retryAfterMs and send again' },
  TRELLIS_CONFLICT: { http: 409, retry: 'never', hint: 'the document changed (or exists) since it was read: read it again and retry' },
  // Signed components and sealed secrets.
  TRELLIS_UNSIGNED: { http: 403, retry: 'never', hint: 'sign the component: `trellis sign <file.wasm> --issuer <seed file> -o <signed.wasm>`, with an allowed issuer' },
  TRELLIS_BAD_SIGNATURE: { http: 403, retry: 'never', hint: 'the component or its claims changed after signing: sign the original again and push that' },
  TRELLIS_EXPIRED: { http: 403, retry: 'never', hint: 'the claims expired: sign the component again with a later --expires' },
  TRELLIS_NOT_YET_VALID: { http: 403, retry: 'never', hint: 'the claims are not valid yet (--not-before): wait, or sign again' },
  TRELLIS_UNTRUSTED_ISSUER: { http: 403, retry: 'never', hint: 'sign with an allowed issuer, or allow this one: `trellis issuers add <public key>` or `--allowed-issuer`' },
  TRELLIS_CAPABILITY_DENIED: { http: 403, retry: 'never', hint: 'the component was signed without this capability: sign it again with --caps including it' },
  TRELLIS_RESERVED_BUCKET: { http: 403, retry: 'never', hint: "Trellis's own buckets (trellis-*) are not for actors: link a bucket of the actor's own" },
  TRELLIS_SECRET_UNSEALABLE: { http: 502, retry: 'never', hint: 'give the provider the lattice secrets key (--secrets-key) that the secret was sealed to, or put the secret again' },
} as const satisfies Record<string, { http: number; retry: RetryClass; hint: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** Is `code` one of ours (for decoding codes that arrived over the wire). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ErrorCodes, code);
}

/** What a caller may do after a failure with this code (see RetryClass). */
export function retryClass(code: ErrorCode): RetryClass {
  return ErrorCodes[code].retry;
}

/** The HTTP status the gateway answers for a code. */
export function httpStatus(code: ErrorCode): number {
  return ErrorCodes[code].http;
}

/** The base of every Trellis error: a stable code, a message, an optional cause. */
export class TrellisError extends Error {
  readonly code: ErrorCode;
  /** When the same request may succeed again (TRELLIS_RATE_LIMITED), ms from now. */
  readonly retryAfterMs?: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.name = 'TrellisError';
    this.code = code;
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
  /** What the user can do about it. */
  get hint(): string {
    return ErrorCodes[this.code].hint;
  }
  /** The wire form used in control replies and invocation errors. */
  toJSON(): WireError {
    return this.retryAfterMs === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, retryAfterMs: this.retryAfterMs };
  }
}

/** An error as it travels on the wire. */
export interface WireError {
  code: string;
  message: string;
  /** Set with TRELLIS_RATE_LIMITED: when to send again, ms. */
  retryAfterMs?: number;
}

/** Rebuild a TrellisError from its wire form; unknown codes become TRELLIS_INTERNAL keeping the text. */
export function fromWire(error: WireError): TrellisError {
  const code = isErrorCode(error.code) ? error.code : 'TRELLIS_INTERNAL';
  const retryAfterMs = typeof error.retryAfterMs === 'number' && Number.isFinite(error.retryAfterMs) ? error.retryAfterMs : undefined;
  return new TrellisError(code, error.message, retryAfterMs === undefined ? undefined : { retryAfterMs });
}

/** Wrap anything thrown into a TrellisError, keeping TrellisErrors as they are. */
export function toTrellisError(err: unknown, fallback: ErrorCode = 'TRELLIS_INTERNAL'): TrellisError {
  if (err instanceof TrellisError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TrellisError(fallback, message, { cause: err });
}

/**
 * Classify a failure of the NATS client (a request, a publish, a connect) by nats.js's error
 * code, never by its message text. `target` names what was being asked, for the message.
 */
export function fromNatsError(err: unknown, target: string): TrellisError {
  if (err instanceof TrellisError) return err;
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case '503':
      return new TrellisError('TRELLIS_NO_RESPONDERS', `no responders for ${target}`, { cause: err });
    case 'TIMEOUT':
      return new TrellisError('TRELLIS_TIMEOUT', `${target} did not answer in time`, { cause: err });
    case 'MAX_PAYLOAD_EXCEEDED':
      return new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', 'payload too large for the NATS server', { cause: err });
    case 'CONNECTION_CLOSED':
    case 'CONNECTION_DRAINING':
    case 'CONNECTION_REFUSED':
    case 'CONNECTION_TIMEOUT':
    case 'DISCONNECT':
      return new TrellisError('TRELLIS_NATS_UNAVAILABLE', `NATS connection unavailable (${code}) while asking ${target}`, { cause: err });
    case 'AUTHORIZATION_VIOLATION':
    case 'AUTHENTICATION_EXPIRED':
    case 'AUTHENTICATION_TIMEOUT':
    case 'ACCOUNT_EXPIRED':
    case 'BAD_AUTHENTICATION':
    case 'BAD_CREDS':
      return new TrellisError('TRELLIS_NATS_AUTH', `NATS refused the credentials (${code})`, { cause: err });
    case 'PERMISSIONS_VIOLATION':
      return new TrellisError('TRELLIS_PERMISSION_DENIED', `NATS denied access while asking ${target}: ${(err as Error).message}`, { cause: err });
    default:
      return new TrellisError('TRELLIS_INTERNAL', (err as Error)?.message ?? String(err), { cause: err });
  }
}

/**
 * JetStream API error codes Trellis branches on (nats-server `server/errors.json`). The server
 * sends them with every JetStream API failure; nats.js keeps them on `err.api_error.err_code`.
 */
export const JetStreamCodes = {
  clusterNoPeers: 10005,
  clusterNotAvailable: 10008,
  clusterNotLeader: 10009,
  insufficientResources: 10023,
  streamNameInUse: 10058,
  streamNotFound: 10059,
  streamWrongLastSequence: 10071,
  replicasNotSupported: 10074,
  streamWrongLastSequenceConstant: 10164,
} as const;

/** The JetStream API error code of a failure, if the server sent one. */
export function jetStreamErrorCode(err: unknown): number | undefined {
  const api = (err as { api_error?: { err_code?: unknown } } | null)?.api_error;
  return typeof api?.err_code === 'number' ? api.err_code : undefined;
}

/** A compare-and-set lost: the key is not at the expected revision (or exists, for a create). */
export function isJetStreamConflict(err: unknown): boolean {
  const code = jetStreamErrorCode(err);
  return code === JetStreamCodes.streamWrongLastSequence || code === JetStreamCodes.streamWrongLastSequenceConstant;
}

/** A stream asked for more replicas than the cluster can place (or a single server holds none). */
export function isTooFewServersForReplicas(err: unknown): boolean {
  const code = jetStreamErrorCode(err);
  return code === JetStreamCodes.replicasNotSupported || code === JetStreamCodes.clusterNoPeers || code === JetStreamCodes.insufficientResources;
}

/**
 * A JetStream failure that only means "not settled yet" and is worth retrying shortly: a stream
 * created a moment ago not visible here yet, a name taken by a concurrent create, a cluster
 * between meta leaders, or the request timing out or finding no responder (nats.js gives those
 * core codes, `TIMEOUT` and `503`, on `err.code`).
 */
export function isJetStreamUnsettled(err: unknown): boolean {
  const code = jetStreamErrorCode(err);
  if (code !== undefined) {
    return code === JetStreamCodes.streamNotFound || code === JetStreamCodes.streamNameInUse || code === JetStreamCodes.clusterNotAvailable || code === JetStreamCodes.clusterNotLeader;
  }
  const core = (err as { code?: unknown } | null)?.code;
  if (core === 'TIMEOUT' || core === '503') return true;
  // nats.js raises this one itself, as a plain Error with no code, when it looks up the stream
  // of a subject and finds none (a stream created elsewhere a moment ago): only its text says so.
  return err instanceof Error && err.message === 'no stream matches subject';
}
