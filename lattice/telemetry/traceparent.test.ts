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
