/**
 * The invocation wire: NATS headers carrying the metadata, and the msgpack reply body. Shared by
 * the RPC client (caller) and the host (callee).
 */
import type { WireError } from '../errors/index.ts';
import type { ActorResponse } from './actor.ts';

/** NATS header names of an invocation. */
export const RpcHeaders = {
  invocationId: 'trellis-invocation-id',
  /** Absolute deadline, epoch milliseconds. */
  deadline: 'trellis-deadline',
  traceparent: 'traceparent',
  caller: 'trellis-caller',
  /**
   * When the caller stops waiting for this attempt (epoch ms) unless a progress reply comes:
   * it then sends the call again. A host that only gets to the call later (it waited behind
   * another call in a busy worker) drops it, so the call runs once.
   */
  attemptExpires: 'trellis-attempt-expires',
  /**
   * Set on an empty interim reply a host sends while a call is still running, so the caller
   * can tell a slow call from a dead host and never re-sends work that is under way.
   */
  progress: 'trellis-progress',
} as const;

/** When a host sends its first progress reply, and how often after that. */
export const PROGRESS_FIRST_MS = 50;
export const PROGRESS_EVERY_MS = 250;
/** How long a caller waits after a progress reply before it presumes the host dead. */
export const PROGRESS_GRACE_MS = 2000;
/**
 * A host drops a call whose attempt expires sooner than this (the caller is about to send it
 * again), and sends a progress reply before starting one that expires sooner than
 * ATTEMPT_PROGRESS_WITHIN_MS, which its regular progress replies might not beat.
 */
export const ATTEMPT_DROP_WITHIN_MS = 20;
export const ATTEMPT_PROGRESS_WITHIN_MS = PROGRESS_FIRST_MS + 200;

/**
 * The reply to an invocation: a response, or an error with a stable code, and who answered
 * (`host` id and `version`). Replies carry no headers, so a caller never parses any on the
 * hot path; only the empty progress replies have one.
 */
export type InvokeReply = ({ ok: true; response: ActorResponse } | { ok: false; error: WireError }) & { host?: string; version?: string };
