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
  /** Set on replies: which host and version answered. */
  host: 'trellis-host',
  version: 'trellis-version',
} as const;

/** The reply to an invocation: a response, or an error with a stable code. */
export type InvokeReply = { ok: true; response: ActorResponse } | { ok: false; error: WireError };
