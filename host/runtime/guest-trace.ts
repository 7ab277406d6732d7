/**
 * Worker side of tracing: the trace context of the call a worker runs. It always carries the
 * caller's traceparent (host calls and log lines get it, so actor-to-actor calls continue the
 * trace and logs show its id); with tracing on it also times the guest's run as a span of its
 * own, whose id the host calls carry as their parent, and posts the finished spans to the main
 * thread in small batches, which exports them with the host's tracer (see lattice/telemetry).
 * With tracing off, a call costs two field writes here.
 */
import { newSpanId, newTraceId, traceIdOf } from '../../lattice/telemetry/traceparent.ts';
import type { FinishedSpan, SpanAttributes } from '../../lattice/telemetry/types.ts';
import type { WireError } from '../../lattice/errors/index.ts';

/** What the span of a guest run is named after. */
export interface GuestIdentity {
  actor: string;
  version: string;
}

/** Error codes that say the guest itself failed (logged with their reason, not only counted). */
const GUEST_FAULTS = new Set(['TRELLIS_WASM_TRAP', 'TRELLIS_SANDBOX_VIOLATION', 'TRELLIS_OUT_OF_MEMORY']);

/** Whether an invocation error is the guest's own fault (a trap, a sandbox violation, OOM). */
export function isGuestFault(error: WireError | undefined): boolean {
  return error !== undefined && GUEST_FAULTS.has(error.code);
}

/** Traceparents Trellis makes (version 00): anything else from the wire starts afresh. */
const OURS = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

// Epoch time with sub-millisecond precision: the worker's clock origin is its own.
const epochNow = () => performance.timeOrigin + performance.now();

/** The trace state of one worker. */
export class GuestTrace {
  /** The traceparent host calls of the running invocation carry ('' when none). */
  current = '';
  #batch: FinishedSpan[] = [];
  #flushScheduled = false;
  #open?: { traceId: string; spanId: string; parentSpanId?: string; startMs: number; invocationId: string };

  constructor(
    private readonly identity: GuestIdentity | undefined,
    private readonly post: (spans: FinishedSpan[]) => void,
  ) {}

  /** The trace id of the running invocation, for its log lines ('' when none). */
  get traceId(): string {
    return traceIdOf(this.current);
  }

  /** An invocation starts (its caller's traceparent, if any). */
  begin(incoming: string | undefined, invocationId: string): void {
    // Headers come from any publisher: a malformed one must not reach logs, spans or callees.
    const traceparent = incoming !== undefined && OURS.test(incoming) ? incoming : undefined;
    if (!this.identity) {
      this.current = traceparent ?? '';
      return;
    }
    const sampled = traceparent === undefined || traceparent.endsWith('-01');
    const traceId = traceIdOf(traceparent) || newTraceId();
    const spanId = newSpanId();
    this.current = `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
    this.#open = sampled ? { traceId, spanId, parentSpanId: traceparent ? traceparent.slice(36, 52) : undefined, startMs: epochNow(), invocationId } : undefined;
  }

  /** The invocation ended (not called when the watchdog took it over: it never ends here). */
  end(result: { error?: WireError; cold: boolean; status?: number }): void {
    const open = this.#open;
    this.#open = undefined;
    this.current = '';
    if (!open || !this.identity) return;
    const attributes: SpanAttributes = {
      'trellis.actor': this.identity.actor,
      'trellis.version': this.identity.version,
      'trellis.invocation_id': open.invocationId,
      'trellis.cold_start': result.cold,
    };
    if (result.status !== undefined) attributes['http.response.status_code'] = result.status;
    this.#batch.push({
      name: `run ${this.identity.actor}@${this.identity.version}`,
      kind: 'server',
      traceId: open.traceId,
      spanId: open.spanId,
      parentSpanId: open.parentSpanId,
      startMs: open.startMs,
      endMs: epochNow(),
      attributes,
      error: result.error ? { code: result.error.code, message: result.error.message } : undefined,
    });
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // After the reply is out: the span never delays the caller.
      setTimeout(() => this.flush(), 20);
    }
  }

  /** Post the finished spans to the main thread now. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#batch.length === 0) return;
    const spans = this.#batch;
    this.#batch = [];
    this.post(spans);
  }
}
