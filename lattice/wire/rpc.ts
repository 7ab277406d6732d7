/**
 * The invocation wire: NATS headers carrying the metadata, and the msgpack reply body. Shared by
 * the RPC client (caller) and the host (callee).
 */
import { TrellisError, type WireError } from '../errors/index.ts';
import type { ActorResponse } from './actor.ts';

/** NATS header names of an invocation. */
export const RpcHeaders = {
  invocationId: 'trellis-invocation-id',
  /** Absolute deadline, epoch milliseconds. */
  deadline: 'trellis-deadline',
  traceparent: 'traceparent',
  caller: 'trellis-caller',
  /**
   * When the caller stops waiting for this attempt (epoch ms) unless a taken or progress reply
   * comes: it then confirms with the server (a flush round trip) and sends the call again. A
   * worker takes a call only while at least ATTEMPT_TAKE_MARGIN_MS of it is left, so the call
   * runs once (see `taken`).
   */
  attemptExpires: 'trellis-attempt-expires',
  /**
   * Set on an empty interim reply a host sends while a call is still running, so the caller
   * can tell a slow call from a dead host and never re-sends work that is under way.
   */
  progress: 'trellis-progress',
  /**
   * Set (with `progress`, so callers that only know progress replies treat it as one) on the
   * empty reply a worker sends the moment it takes a call, before the actor runs: the caller
   * then waits on while progress keeps coming, and sends the call again only if the taker
   * goes silent for PROGRESS_GRACE_MS (it died). Nobody else runs a taken call meanwhile.
   */
  taken: 'trellis-taken',
  /** A client's own request id (the gateway's x-request-id), for logs; never the invocation id. */
  requestId: 'trellis-request-id',
} as const;

/** When a host sends its first progress reply, and how often after that. */
export const PROGRESS_FIRST_MS = 50;
export const PROGRESS_EVERY_MS = 250;
/** How long a caller waits after a progress reply before it presumes the host dead. */
export const PROGRESS_GRACE_MS = 2000;
/**
 * A worker takes a call only while at least this much of its attempt is left, and otherwise
 * drops it unanswered (its caller is about to send it again, which is safe: nobody ran it).
 * The margin is what the taken reply may spend between leaving the worker and being read by the
 * server, before the caller, its attempt expired, asks the server for a flush round trip: every
 * reply the server read before that round trip reaches the caller first (see reply-mux.ts).
 */
export const ATTEMPT_TAKE_MARGIN_MS = 50;

/**
 * The reply to an invocation: a response, or an error with a stable code, and who answered
 * (`host` id and `version`). Replies carry no headers, so a caller never parses any on the
 * hot path; only the empty taken and progress replies have one.
 */
export type InvokeReply = ({ ok: true; response: ActorResponse } | { ok: false; error: WireError }) & { host?: string; version?: string };

/** Longest invocation id a host accepts in the header (Trellis makes UUIDs, 36 characters). */
export const MAX_INVOCATION_ID_LENGTH = 128;

/**
 * Check the invocation id a caller sent (absent is fine: the host makes one). It keys idempotent
 * writes at providers, so it must be a short printable token: TRELLIS_BAD_REQUEST otherwise.
 */
export function checkInvocationId(id: string | undefined): void {
  if (id !== undefined && (id.length > MAX_INVOCATION_ID_LENGTH || !/^[\x21-\x7e]+$/.test(id))) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `header ${RpcHeaders.invocationId}: must be 1 to ${MAX_INVOCATION_ID_LENGTH} printable characters`);
  }
}
