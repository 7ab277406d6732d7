import { describe, expect, it } from 'vitest';
import type { FinishedSpan } from '../../lattice/telemetry/index.ts';
import { GuestTrace, isGuestFault } from './guest-trace.ts';

const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('guest trace (worker side)', () => {
  it('guest trace - off: host calls carry the caller\'s traceparent as is, and no span is made', () => {
    const posted: FinishedSpan[][] = [];
    const t = new GuestTrace(undefined, (s) => posted.push(s));
    t.begin(parent, 'inv-1');
    expect(t.current).toBe(parent);
    expect(t.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    t.end({ cold: false, status: 200 });
    t.flush();
    expect(t.current).toBe('');
    expect(posted).toEqual([]);
    // A malformed header from the wire is not passed on.
    t.begin('00-zz-bad', 'inv-2');
    expect(t.current).toBe('');
  });

  it('guest trace - on: the run is a child span of the caller, host calls its children; spans are posted in batches', () => {
    const posted: FinishedSpan[][] = [];
    const t = new GuestTrace({ actor: 'hello', version: '1.0.0' }, (s) => posted.push(s));
    t.begin(parent, 'inv-1');
    const child = t.current;
    expect(child).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(child.slice(36, 52)).not.toBe('00f067aa0ba902b7');
    t.end({ cold: true, status: 503 });
    t.begin(undefined, 'inv-2');
    t.end({ cold: false, error: { code: 'TRELLIS_WASM_TRAP', message: 'wasm trap: unreachable' } });
    t.flush();
    expect(posted).toHaveLength(1);
    const [first, second] = posted[0]!;
    expect(first).toMatchObject({ name: 'run hello@1.0.0', kind: 'server', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: child.slice(36, 52), parentSpanId: '00f067aa0ba902b7' });
    expect(first!.attributes).toMatchObject({ 'trellis.invocation_id': 'inv-1', 'trellis.cold_start': true, 'http.response.status_code': 503 });
    expect(first!.endMs).toBeGreaterThanOrEqual(first!.startMs);
    // No caller context: a root span of a new trace.
    expect(second!.parentSpanId).toBeUndefined();
    expect(second!.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(second!.error).toEqual({ code: 'TRELLIS_WASM_TRAP', message: 'wasm trap: unreachable' });
  });

  it('guest trace - an unsampled caller gets no span, and its flag travels on', () => {
    const posted: FinishedSpan[][] = [];
    const t = new GuestTrace({ actor: 'hello', version: '1.0.0' }, (s) => posted.push(s));
    t.begin(parent.replace(/01$/, '00'), 'inv-1');
    expect(t.current.endsWith('-00')).toBe(true);
    t.end({ cold: false });
    t.flush();
    expect(posted).toEqual([]);
  });

  it('guest trace - traps, sandbox violations and OOM are guest faults; other codes are not', () => {
    expect(isGuestFault({ code: 'TRELLIS_WASM_TRAP', message: '' })).toBe(true);
    expect(isGuestFault({ code: 'TRELLIS_SANDBOX_VIOLATION', message: '' })).toBe(true);
    expect(isGuestFault({ code: 'TRELLIS_OUT_OF_MEMORY', message: '' })).toBe(true);
    expect(isGuestFault({ code: 'TRELLIS_ACTOR_ERROR', message: '' })).toBe(false);
    expect(isGuestFault(undefined)).toBe(false);
  });
});
