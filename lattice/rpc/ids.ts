/**
 * Invocation ids. Trellis generates one per invocation (a client's request id is not unique,
 * and capability writes are de-duplicated by the invocation id and the call's sequence number).
 * A call an actor makes to another actor gets an id derived from its caller's invocation and
 * that host call's sequence number: a retried caller repeats its callees' ids, so their writes
 * stay idempotent too, while two calls of one invocation (different sequence numbers) differ.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { InvocationRef } from '../wire/index.ts';

/** The id of an invocation: fresh, or derived from the invocation (and host call) that makes it. */
export function invocationIdFor(parent?: InvocationRef): string {
  if (!parent) return randomUUID();
  const h = createHash('sha256').update(parent.id).update('\u0000').update(String(parent.seq)).digest('hex');
  // UUID layout (version 8: custom), so ids look alike in logs and headers whatever made them.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
