/**
 * Tracing with OpenTelemetry's SDK, exported over OTLP/HTTP (JSON) when an endpoint is set
 * (`--otlp-endpoint`, or the standard OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT). Off by
 * default, and then nothing is loaded: `startTracing` resolves to undefined and callers test
 * one variable. Each participant gets its own provider (never registered globally), so hosts
 * sharing a process (tests) keep their own resource: service name per role, host id, lattice.
 * The standard OTEL_* variables apply (sampler, batch processor, headers, resource attributes).
 */
import type { FinishedSpan, SpanAttributes, SpanHandle, SpanKindName, SpanOptions, Tracing } from './types.ts';
import { TrellisError } from '../errors/index.ts';
import { parseTraceparent } from './traceparent.ts';

export * from './types.ts';
export { childTraceparent, formatTraceparent, newSpanId, newTraceId, newTraceparent, parseTraceparent, traceIdOf, type TraceContext } from './traceparent.ts';

/** What a participant says about itself when it starts tracing. */
export interface TracingOptions {
  /** service.name: trellis-host, trellis-gateway, trellis-provider, trellis-controller. */
  service: string;
  lattice: string;
  /** The participant's id (a host's nkey): service.instance.id and trellis.host_id. */
  instanceId?: string;
  /** Base URL of an OTLP/HTTP collector (`/v1/traces` is added); overrides the environment. */
  endpoint?: string;
  version?: string;
  attributes?: SpanAttributes;
}

/**
 * Where spans go, or undefined when tracing is off: the flag first, then the standard
 * variables; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off.
 */
export function tracingEndpoint(endpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): { url?: string } | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return undefined;
  if (endpoint !== undefined && endpoint !== '') {
    if (!URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol)) {
      throw new TrellisError('TRELLIS_BAD_OPTION', `invalid option --otlp-endpoint: "${endpoint}" is not an http(s) URL (e.g. http://127.0.0.1:4318)`);
    }
    const base = endpoint.replace(/\/+$/, '');
    return { url: base.endsWith('/v1/traces') ? base : `${base}/v1/traces` };
  }
  // The exporter reads these itself (with their per-signal and header variants).
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT) return {};
  return undefined;
}

const KINDS: Record<SpanKindName, number> = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 };

/** Start tracing for one participant; undefined (and no SDK loaded) when no endpoint is set. */
export async function startTracing(options: TracingOptions, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  const target = tracingEndpoint(options.endpoint, env);
  if (!target) return undefined;
  const [api, base, resources, otlp] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/exporter-trace-otlp-http'),
  ]);
  const ours: SpanAttributes = { 'service.name': options.service, 'trellis.lattice': options.lattice, ...options.attributes };
  if (options.instanceId) Object.assign(ours, { 'service.instance.id': options.instanceId, 'trellis.host_id': options.instanceId });
  if (options.version) ours['service.version'] = options.version;
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over ours, as the specification says.
  const resource = resources.defaultResource().merge(resources.resourceFromAttributes(ours)).merge(resources.detectResources({ detectors: [resources.envDetector] }));

  // Spans timed in a worker arrive with their ids already taken (their children point at
  // them): the next id the SDK asks for is that one. startSpan asks synchronously, once.
  const random = new base.RandomIdGenerator();
  let forcedSpanId: string | undefined;
  let forcedTraceId: string | undefined;
  const idGenerator = {
    generateSpanId() {
      const id = forcedSpanId;
      forcedSpanId = undefined;
      return id ?? random.generateSpanId();
    },
    generateTraceId() {
      const id = forcedTraceId;
      forcedTraceId = undefined;
      return id ?? random.generateTraceId();
    },
  };
  const exporter = new otlp.OTLPTraceExporter(target.url ? { url: target.url } : {});
  const provider = new base.BasicTracerProvider({ resource, idGenerator, spanProcessors: [new base.BatchSpanProcessor(exporter)] });
  const tracer = provider.getTracer('trellis', options.version);

  const parentContext = (traceparent: string | undefined) => {
    const parsed = parseTraceparent(traceparent);
    if (!parsed) return api.ROOT_CONTEXT;
    return api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: parsed.traceId, spanId: parsed.spanId, traceFlags: parsed.sampled ? 1 : 0, isRemote: true });
  };

  const wrap = (span: import('@opentelemetry/api').Span): SpanHandle => {
    const ctx = span.spanContext();
    return {
      traceparent: `00-${ctx.traceId}-${ctx.spanId}-${(ctx.traceFlags & 1) === 1 ? '01' : '00'}`,
      traceId: ctx.traceId,
      event: (name, attributes) => void span.addEvent(name, attributes),
      attributes: (attributes) => void span.setAttributes(attributes),
      fail: (error) => {
        span.setAttribute('trellis.error_code', error.code);
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: `${error.code}: ${error.message}` });
      },
      end: () => span.end(),
    };
  };

  let stopped = false;
  return {
    service: options.service,
    span(name, opts: SpanOptions = {}) {
      return wrap(tracer.startSpan(name, { kind: KINDS[opts.kind ?? 'internal'], attributes: opts.attributes }, parentContext(opts.parent)));
    },
    record(spans) {
      if (stopped) return;
      for (const s of spans) {
        const parent = s.parentSpanId ? api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: 1, isRemote: true }) : api.ROOT_CONTEXT;
        forcedSpanId = s.spanId;
        if (!s.parentSpanId) forcedTraceId = s.traceId;
        const span = tracer.startSpan(s.name, { kind: KINDS[s.kind], attributes: s.attributes, startTime: s.startMs }, parent);
        forcedSpanId = forcedTraceId = undefined;
        for (const e of s.events ?? []) span.addEvent(e.name, e.attributes, e.timeMs);
        if (s.error) {
          span.setAttribute('trellis.error_code', s.error.code);
          span.setStatus({ code: api.SpanStatusCode.ERROR, message: `${s.error.code}: ${s.error.message}` });
        }
        span.end(s.endMs);
      }
    },
    flush: () => provider.forceFlush(),
    async shutdown() {
      if (stopped) return;
      stopped = true;
      await provider.shutdown().catch(() => {});
    },
  };
}
