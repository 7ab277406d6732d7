import { describe, expect, it } from 'vitest';
import { subjects } from '../subjects/index.ts';
import { ANONYMOUS, FairQueue, RateLimiter, callerOf, compileRateLimit, takeToken } from './rate-limit.ts';

describe('control rate limit', () => {
  it('control rate limit - the caller is the user of the reply inbox prefix, anyone else is anonymous', () => {
    const prefix = subjects('prod').inboxPrefix('alice');
    expect(callerOf(`${prefix}.Xyz.1`, 'prod')).toBe('alice');
    expect(callerOf(`${prefix}.x`, 'prod')).toBe('alice');
    // Not below the prefix (the user may not subscribe there), another lattice, a plain inbox, none.
    expect(callerOf(prefix, 'prod')).toBe(ANONYMOUS);
    expect(callerOf(`${prefix}.`, 'prod')).toBe(ANONYMOUS);
    expect(callerOf(`_INBOX.dev.alice.x`, 'prod')).toBe(ANONYMOUS);
    expect(callerOf('_INBOX.8MpDoyu3V1W5X0aB.1', 'prod')).toBe(ANONYMOUS);
    expect(callerOf('_INBOX.prod..x', 'prod')).toBe(ANONYMOUS);
    expect(callerOf('_INBOX.prod.*.x', 'prod')).toBe(ANONYMOUS);
    expect(callerOf(undefined, 'prod')).toBe(ANONYMOUS);
    expect(callerOf('', 'prod')).toBe(ANONYMOUS);
  });

  it('control rate limit - a token bucket admits its burst, then its rate, and says when to retry', () => {
    const bucket = { tokens: 3, at: 0 };
    expect([1, 2, 3].map(() => takeToken(bucket, 0, 10, 3).ok)).toEqual([true, true, true]);
    expect(takeToken(bucket, 0, 10, 3)).toEqual({ ok: false, retryAfterMs: 100 });
    expect(takeToken(bucket, 50, 10, 3)).toEqual({ ok: false, retryAfterMs: 50 });
    expect(takeToken(bucket, 100, 10, 3).ok).toBe(true);
    // Idle for long: refilled to the burst, never more.
    expect([1, 2, 3, 4].map(() => takeToken(bucket, 60_000, 10, 3).ok)).toEqual([true, true, true, false]);
    // A clock that steps back refills nothing.
    expect(takeToken(bucket, 1000, 10, 3).ok).toBe(false);
  });

  it('control rate limit - one flooding caller is refused while others are admitted', () => {
    const limiter = new RateLimiter(compileRateLimit({ ratePerSec: 10, burst: 5 }));
    const flood = Array.from({ length: 100 }, () => limiter.take('mallory', 0));
    expect(flood.filter((t) => !t.refused)).toHaveLength(5);
    const refusal = flood.at(-1)!.refused!;
    expect(refusal).toMatchObject({ code: 'TRELLIS_RATE_LIMITED', retryAfterMs: 100 });
    expect(refusal.message).toBe('caller mallory sends commands faster than its limit; retry in 100 ms');
    expect(refusal.toJSON()).toEqual({ code: 'TRELLIS_RATE_LIMITED', message: refusal.message, retryAfterMs: 100 });
    expect(limiter.take('alice', 0).refused).toBeUndefined();
    expect(limiter.take(ANONYMOUS, 0).refused).toBeUndefined();
  });

  it('control rate limit - the anonymous caller (everyone without a user inbox) has its own, larger budget', () => {
    const limiter = new RateLimiter(compileRateLimit({ ratePerSec: 10, burst: 5 }));
    expect(Array.from({ length: 60 }, () => limiter.take(ANONYMOUS, 0)).filter((t) => !t.refused)).toHaveLength(50);
    const custom = new RateLimiter(compileRateLimit({ ratePerSec: 10, burst: 5, anonymousBurst: 1, anonymousRatePerSec: 1 }));
    expect(custom.take(ANONYMOUS, 0).refused).toBeUndefined();
    expect(custom.take(ANONYMOUS, 0).refused?.retryAfterMs).toBe(1000);
  });

  it('control rate limit - the table of callers is bounded: refilled buckets go, overflow is anonymous', () => {
    const limiter = new RateLimiter(compileRateLimit({ ratePerSec: 10, burst: 2, maxCallers: 3, anonymousRatePerSec: 10, anonymousBurst: 2 }));
    expect(limiter.take('alice', 0).charged).toBe('alice');
    expect(limiter.take('bob', 0).charged).toBe('bob');
    expect(limiter.take('carol', 0).charged).toBe('carol');
    // Full: a made-up caller shares the anonymous bucket; the known ones keep theirs.
    expect(limiter.take('made-up-1', 50).charged).toBe(ANONYMOUS);
    expect(limiter.take('made-up-2', 50).charged).toBe(ANONYMOUS);
    expect(limiter.take('made-up-3', 50).refused?.code).toBe('TRELLIS_RATE_LIMITED');
    expect(limiter.take('alice', 50).charged).toBe('alice');
    // Once the buckets refilled (idle callers), they are dropped and new callers get their own.
    expect(limiter.take('dave', 10_000).charged).toBe('dave');
    expect(limiter.size).toBe(1);
    // The anonymous bucket never takes a caller's place in the table.
    expect(limiter.take(ANONYMOUS, 10_000).charged).toBe(ANONYMOUS);
  });

  it('control rate limit - rate 0 turns limiting off; bad options are refused by name', () => {
    const off = new RateLimiter(compileRateLimit({ ratePerSec: 0 }));
    expect(Array.from({ length: 10_000 }, () => off.take('x', 0)).every((t) => !t.refused)).toBe(true);
    expect(() => compileRateLimit({ ratePerSec: -1 })).toThrow(/option --control-rate: must be an integer from 0/);
    expect(() => compileRateLimit({ burst: 0 })).toThrow(/option --control-burst/);
  });

  it('control rate limit - the fair queue runs callers round-robin within its concurrency', async () => {
    const queue = new FairQueue({ concurrency: 2, maxPending: 100, perCaller: 2 });
    const order: string[] = [];
    const gates: (() => void)[] = [];
    const work = (name: string) => () =>
      new Promise<void>((resolve) => {
        order.push(name);
        gates.push(resolve);
      });
    for (let i = 0; i < 5; i++) queue.push('flood', work(`flood${i}`));
    queue.push('alice', work('alice0'));
    queue.push('bob', work('bob0'));
    // Two slots, both taken by flood before anyone else asked; alice and bob wait.
    expect(order).toEqual(['flood0', 'flood1']);
    const release = async () => {
      gates.shift()!();
      await new Promise((r) => setTimeout(r, 0));
    };
    await release();
    await release();
    await release();
    // From then on everyone's next command goes before flood's next one.
    expect(order).toEqual(['flood0', 'flood1', 'alice0', 'bob0', 'flood2']);
    await release();
    expect(order.at(-1)).toBe('flood3');
    expect(queue.running).toBe(2);
    expect(queue.waiting).toBe(1);
  });

  it('control rate limit - one caller never holds more than perCaller slots, however slow its work', async () => {
    const queue = new FairQueue({ concurrency: 4, maxPending: 100, perCaller: 2 });
    const started: string[] = [];
    const gates: (() => void)[] = [];
    const slow = (name: string) => () => new Promise<void>((resolve) => (started.push(name), gates.push(resolve)));
    for (let i = 0; i < 10; i++) queue.push('flood', slow(`flood${i}`));
    // Two of flood's run; the other two slots stay free for anyone else.
    expect(started).toEqual(['flood0', 'flood1']);
    queue.push('alice', slow('alice0'));
    queue.push('alice', slow('alice1'));
    queue.push('alice', slow('alice2'));
    expect(started).toEqual(['flood0', 'flood1', 'alice0', 'alice1']);
    expect(queue.running).toBe(4);
    // A slot of flood's frees: flood's next runs (alice is at its own cap).
    gates.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(started.at(-1)).toBe('flood2');
    expect(queue.waiting).toBe(8);
    // The anonymous caller (everyone, without user inboxes) may hold half of all slots.
    const shared = new FairQueue({ concurrency: 8, maxPending: 100, perCaller: 1 });
    let running = 0;
    for (let i = 0; i < 6; i++) shared.push(ANONYMOUS, () => new Promise<void>(() => running++));
    expect(running).toBe(4);
  });

  it('control rate limit - a caller with maxPending waiting is refused more; a failing work frees its slot', async () => {
    const queue = new FairQueue({ concurrency: 1, maxPending: 2, perCaller: 1 });
    let release!: () => void;
    expect(queue.push('a', () => new Promise<void>((r) => (release = r)))).toBe(true);
    expect(queue.push('a', () => Promise.reject(new Error('boom')))).toBe(true);
    expect(queue.push('a', async () => {})).toBe(true);
    expect(queue.push('a', async () => {})).toBe(false);
    expect(queue.push('b', async () => {})).toBe(true);
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(queue.running).toBe(0);
    expect(queue.waiting).toBe(0);
  });
});
