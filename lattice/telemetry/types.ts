/** Span data that crosses threads: plain, structured-clone safe, dependency-free. */

export type SpanKindName = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
export type SpanAttributes = Record<string, string | number | boolean>;

/**
 * A span timed elsewhere (an actor worker) with its own ids, exported by the thread that owns
 * the tracer. Times are epoch milliseconds with sub-millisecond fractions.
 */
export interface FinishedSpan {
  name: string;
  kind: SpanKindName;
  traceId: string;
  spanId: string;
  /** Absent for a root span. */
  parentSpanId?: string;
  startMs: number;
  endMs: number;
  attributes: SpanAttributes;
  /** Set when the span failed: its error code and message. */
  error?: { code: string; message: string };
  events?: { name: string; timeMs: number; attributes?: SpanAttributes }[];
}

/** One live span, as Trellis code sees it (a thin face over the SDK's span). */
export interface SpanHandle {
  /** This span as the parent of the next hop (W3C traceparent). */
  readonly traceparent: string;
  readonly traceId: string;
  /** A point in time worth seeing: an attempt, a retry, a failover. */
  event(name: string, attributes?: SpanAttributes): void;
  attributes(attributes: SpanAttributes): void;
  /** Mark the span failed with a Trellis error code. */
  fail(error: { code: string; message: string }): void;
  end(): void;
}

/** Options of a new span. */
export interface SpanOptions {
  kind?: SpanKindName;
  /** The parent as a traceparent (remote or from this process); a new trace when absent or invalid. */
  parent?: string;
  attributes?: SpanAttributes;
}

/** Tracing of one participant: present only when an OTLP endpoint is configured. */
export interface Tracing {
  /** service.name of this participant (trellis-host, trellis-gateway...). */
  readonly service: string;
  span(name: string, options?: SpanOptions): SpanHandle;
  /** Export spans timed elsewhere, keeping their ids (children already point at them). */
  record(spans: readonly FinishedSpan[]): void;
  /** Send what is buffered now. */
  flush(): Promise<void>;
  /** Flush and stop exporting. */
  shutdown(): Promise<void>;
}
