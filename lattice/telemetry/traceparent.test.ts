import { describe, expect, it } from 'vitest';
import { childTraceparent, formatTraceparent, newSpanId, newTraceparent, parseTraceparent, traceIdOf } from './traceparent.ts';

describe('traceparent', () => {
  const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  it('traceparent - parses the W3C example and formats it back', () => {
    const ctx = parseTraceparent(valid);
    expect(ctx).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true });
    expect(formatTraceparent(ctx!)).toBe(valid);
    expect(parseTraceparent(valid.replace(/01$/, '00'))?.sampled).toBe(false);
    expect(parseTraceparent(valid.toUpperCase())?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('traceparent - refuses malformed values (a new trace starts instead)', () => {
    for (const bad of [
      undefined,
      '',
      'garbage',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01',
      `${valid}-extra`,
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
    // A later version may append fields.
    expect(parseTraceparent(`01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more`)?.spanId).toBe('00f067aa0ba902b7');
  });

  it('traceparent - new ids are fresh, valid and children keep the trace and flags', () => {
    const a = newTraceparent();
    const b = newTraceparent();
    expect(a).not.toBe(b);
    const parsed = parseTraceparent(a)!;
    expect(parsed.sampled).toBe(true);
    const span = newSpanId();
    expect(span).toMatch(/^[0-9a-f]{16}$/);
    const child = childTraceparent({ ...parsed, sampled: false }, span);
    expect(parseTraceparent(child)).toEqual({ traceId: parsed.traceId, spanId: span, sampled: false });
    expect(traceIdOf(child)).toBe(parsed.traceId);
    expect(traceIdOf(undefined)).toBe('');
    expect(traceIdOf('nope')).toBe('');
  });
});

describe('tracing endpoint', () => {
  it('tracing - the flag wins, /v1/traces is added once; the standard variables turn it on and off', async () => {
    const { tracingEndpoint, startTracing } = await import('./index.ts');
    expect(tracingEndpoint(undefined, {})).toBeUndefined();
    expect(tracingEndpoint('http://c:4318', {})).toEqual({ url: 'http://c:4318/v1/traces' });
    expect(tracingEndpoint('http://c:4318/v1/traces/', {})).toEqual({ url: 'http://c:4318/v1/traces' });
    expect(tracingEndpoint(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({});
    expect(tracingEndpoint(undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toEqual({});
    expect(tracingEndpoint('http://c:4318', { OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingEndpoint('http://c:4318', { OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(() => tracingEndpoint('ftp://c', {})).toThrow(/--otlp-endpoint/);
    // Off: nothing started.
    expect(await startTracing({ service: 'trellis-host', lattice: 'l' }, {})).toBeUndefined();
  });
});
