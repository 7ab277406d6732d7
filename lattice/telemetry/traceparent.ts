/**
 * W3C trace context (`traceparent`) as plain strings: parsed, made and continued without the
 * OpenTelemetry SDK, so the hot path and worker threads can carry a trace without loading it.
 * Format: `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`.
 */
import { randomBytes } from 'node:crypto';

/** The parts of a traceparent. */
export interface TraceContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * Parse a traceparent header; undefined for anything invalid (all-zero ids, version ff, bad
 * hex), so a malformed client header starts a new trace instead of failing the request.
 */
export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  if (typeof value !== 'string' || value.length < 55) return undefined;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m || m[1] === 'ff' || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return undefined;
  // Version 00 has exactly four fields; later versions may append more.
  if (m[1] === '00' && value.trim().length !== 55) return undefined;
  return { traceId: m[2]!, spanId: m[3]!, sampled: (parseInt(m[4]!, 16) & 1) === 1 };
}

/** Format a traceparent (version 00). */
export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.sampled ? '01' : '00'}`;
}

/**
 * The trace id of a traceparent the caller already trusts (one Trellis made or validated): a
 * slice, no parse. Empty when it is not one.
 */
export function traceIdOf(traceparent: string | undefined): string {
  return traceparent !== undefined && traceparent.length >= 55 && traceparent.charCodeAt(2) === 45 ? traceparent.slice(3, 35) : '';
}

// Ids come from a pool of random bytes: randomBytes() per id costs more than the rest of a call.
const POOL_BYTES = 4096;
let pool = randomBytes(POOL_BYTES);
let offset = 0;

function randomHex(bytes: number): string {
  if (offset + bytes > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  const o = offset;
  offset += bytes;
  return pool.toString('hex', o, o + bytes);
}

/** A new random span id (16 hex). */
export function newSpanId(): string {
  return randomHex(8);
}

/** A new random trace id (32 hex). */
export function newTraceId(): string {
  return randomHex(16);
}

/** A traceparent starting a new, sampled trace. */
export function newTraceparent(): string {
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

/** The traceparent of a child span `spanId` under `parent` (same trace and flags). */
export function childTraceparent(parent: TraceContext, spanId: string): string {
  return formatTraceparent({ traceId: parent.traceId, spanId, sampled: parent.sampled });
}
