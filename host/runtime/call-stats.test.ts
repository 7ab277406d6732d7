import { describe, expect, it } from 'vitest';
import { CallStats } from './call-stats.ts';

describe('call stats', () => {
  it('call stats - 5xx responses and calls given up on are counted apart, once, and a shared buffer sees them', () => {
    const worker = new CallStats();
    const main = new CallStats(worker.buffer);
    worker.record(undefined, 0.001, false);
    worker.record(undefined, 0.002, false, true);
    worker.record('TRELLIS_WASM_TRAP', 0.003, false);
    worker.record('TRELLIS_TIMEOUT', 0.0001, undefined, false, true);
    worker.record('TRELLIS_DEADLINE_EXCEEDED', 0.0001, undefined, false, true);
    const batch = main.drain()!;
    expect(batch).toMatchObject({ ok: 2, serverErrors: 1, unserved: 2, errors: { TRELLIS_WASM_TRAP: 1, TRELLIS_TIMEOUT: 1, TRELLIS_DEADLINE_EXCEEDED: 1 }, coldStarts: 0, warmCalls: 3 });
    expect(batch.seconds).toEqual([0.001, 0.002, 0.003, 0.0001, 0.0001]);
    expect(main.drain()).toBeUndefined();
    worker.record(undefined, 0.001, true, true);
    expect(main.drain()).toMatchObject({ ok: 1, serverErrors: 1, unserved: 0, coldStarts: 1 });
  });
});
