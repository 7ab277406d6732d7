/**
 * The one registry of Trellis error codes. Every failure that crosses a process or API boundary
 * carries one of these stable codes, so callers (CLI, gateway, tests, scripts) branch on the code
 * and never on message text. The gateway maps codes to HTTP statuses from `httpStatus` below.
 */

/** Stable error codes with a one-line meaning and what the user can do about it. */
export const ErrorCodes = {
  TRELLIS_BAD_REQUEST: { http: 400, hint: 'fix the request; the message names the bad field' },
  TRELLIS_BAD_OPTION: { http: 400, hint: 'fix the named option or environment variable' },
  TRELLIS_UNKNOWN_COMMAND: { http: 400, hint: 'run `trellis --help` for the commands this version knows' },
  TRELLIS_WRONG_LATTICE: { http: 400, hint: 'send to the lattice the host belongs to (--lattice)' },
  TRELLIS_PAYLOAD_TOO_LARGE: { http: 413, hint: 'send a smaller payload or raise the limit' },
  TRELLIS_NOT_FOUND: { http: 404, hint: 'check the name or id with `trellis get ...`' },
  TRELLIS_NO_ROUTE: { http: 404, hint: 'add a route: `trellis http route add <prefix> <actor>`' },
  TRELLIS_NO_RESPONDERS: { http: 503, hint: 'start an instance (`trellis start actor`) or check that hosts are up' },
  TRELLIS_TIMEOUT: { http: 504, hint: 'the peer did not answer in time; check that it is up and not overloaded' },
  TRELLIS_DEADLINE_EXCEEDED: { http: 504, hint: 'raise the deadline or make the actor faster' },
  TRELLIS_NATS_UNAVAILABLE: { http: 503, hint: 'check the NATS URL and that nats-server runs' },
  TRELLIS_NATS_MISSING: { http: 500, hint: 'install nats-server (Debian: apt-get install nats-server)' },
  TRELLIS_INTERNAL: { http: 500, hint: 'a bug: please report it with the logs' },
  // Actor runtime and sandbox.
  TRELLIS_ACTOR_ERROR: { http: 502, hint: 'the actor returned an error; see its message' },
  TRELLIS_LOAD_FAILED: { http: 502, hint: 'the module is not a valid WebAssembly component for a supported world' },
  TRELLIS_WASM_TRAP: { http: 502, hint: 'the actor trapped; check its code' },
  TRELLIS_OUT_OF_MEMORY: { http: 502, hint: 'raise maxMemoryPages in the policy or use less memory' },
  TRELLIS_TIME_LIMIT: { http: 504, hint: 'raise executionTimeoutMs in the policy or make the actor faster' },
  TRELLIS_SANDBOX_VIOLATION: { http: 502, hint: 'grant the access in the actor policy (allowedHosts, allowedEnvVars, allowedDirs)' },
  TRELLIS_NOT_LINKED: { http: 502, hint: 'link the actor to a provider: `trellis link put <actor> <provider>`' },
  TRELLIS_OVERLOADED: { http: 503, hint: 'the actor is at max concurrency; scale it out or retry' },
  // Lattice state.
  TRELLIS_DIGEST_NOT_FOUND: { http: 404, hint: 'push the component first: `trellis push <file.wasm>`' },
  TRELLIS_DIGEST_MISMATCH: { http: 502, hint: 'the stored artifact is corrupt; push it again' },
  TRELLIS_BAD_WEIGHTS: { http: 400, hint: 'weights are version=percent pairs of known versions summing to 100' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** Is `code` one of ours (for decoding codes that arrived over the wire). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ErrorCodes, code);
}

/** The HTTP status the gateway answers for a code. */
export function httpStatus(code: ErrorCode): number {
  return ErrorCodes[code].http;
}

/** The base of every Trellis error: a stable code, a message, an optional cause. */
export class TrellisError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TrellisError';
    this.code = code;
  }
  /** What the user can do about it. */
  get hint(): string {
    return ErrorCodes[this.code].hint;
  }
  /** The wire form used in control replies and invocation errors. */
  toJSON(): WireError {
    return { code: this.code, message: this.message };
  }
}

/** An error as it travels on the wire. */
export interface WireError {
  code: string;
  message: string;
}

/** Rebuild a TrellisError from its wire form; unknown codes become TRELLIS_INTERNAL keeping the text. */
export function fromWire(error: WireError): TrellisError {
  const code = isErrorCode(error.code) ? error.code : 'TRELLIS_INTERNAL';
  return new TrellisError(code, error.message);
}

/** Wrap anything thrown into a TrellisError, keeping TrellisErrors as they are. */
export function toTrellisError(err: unknown, fallback: ErrorCode = 'TRELLIS_INTERNAL'): TrellisError {
  if (err instanceof TrellisError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TrellisError(fallback, message, { cause: err });
}

/** JetStream API error codes Trellis acts on (the server's `err_code`; stable, unlike the text). */
export const JetStreamErrorCodes = {
  /** A publish's expected last (subject) sequence did not match: someone else wrote first. */
  wrongLastSequence: 10071,
} as const;

/** The JetStream API error code (`err_code`) carried by a nats.js failure, if it has one. */
export function jetStreamErrorCode(err: unknown): number | undefined {
  const code = (err as { api_error?: { err_code?: unknown } } | null)?.api_error?.err_code;
  return typeof code === 'number' ? code : undefined;
}
