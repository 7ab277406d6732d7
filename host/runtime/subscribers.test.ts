import { describe, expect, it } from 'vitest';
import { leaveAll, Subscribers } from './subscribers.ts';

/** Worker `index`'s view of each version's shared array. */
const views = (buffers: SharedArrayBuffer[], index: number) => buffers.map((b) => new Subscribers(b, index));

describe('subscribers', () => {
  it('subscribers - a worker cannot pause while a version it serves has no other subscriber (one still loading it)', () => {
    // Worker 0 serves v1 and v2; worker 1 has subscribed v1 only (still loading v2, or its add failed).
    const [v1, v2] = [Subscribers.buffer(2), Subscribers.buffer(2)];
    const [a1, a2] = views([v1, v2], 0);
    const [b1] = views([v1, v2], 1);
    a1!.join();
    a2!.join();
    b1!.join();
    expect(leaveAll([a1!, a2!])).toBe(false);
    // Refused whole: v1, left first, is joined again.
    expect([a1!.joined(), a2!.joined(), a1!.count(), a2!.count()]).toEqual([true, true, 2, 1]);
    // Once worker 1 subscribes v2 as well, worker 0 may pause, and worker 1 then may not.
    const b2 = new Subscribers(v2, 1);
    b2.join();
    expect(leaveAll([a1!, a2!])).toBe(true);
    expect([a1!.count(), a2!.count(), a1!.joined()]).toEqual([1, 1, false]);
    expect(leaveAll([b1!, b2])).toBe(false);
    expect([b1!.count(), b2.count(), b1!.joined(), b2.joined()]).toEqual([1, 1, true, true]);
  });

  it('subscribers - a disconnected or stopped worker is not counted', () => {
    const v = Subscribers.buffer(2);
    const [a, b] = [new Subscribers(v, 0), new Subscribers(v, 1)];
    a.join();
    b.join();
    b.out(); // disconnect
    expect(a.leave()).toBe(false);
    b.join(); // reconnect
    expect(a.leave()).toBe(true);
    a.join();
    a.out();
    a.out(); // twice: counted once
    expect(b.count()).toBe(1);
  });

  it('subscribers - a retired worker is uncounted and cannot join again until its replacement starts', () => {
    const v = Subscribers.buffer(2);
    const [a, b] = [new Subscribers(v, 0), new Subscribers(v, 1)];
    a.join();
    b.join();
    new Subscribers(v, 1).retire(); // the main thread replaced worker 1
    expect(a.count()).toBe(1);
    expect(b.join()).toBe(false); // the old thread, still running a moment
    expect(b.leave()).toBe(false);
    expect(a.count()).toBe(1);
    expect(a.leave()).toBe(false);
    new Subscribers(v, 1).reset(); // its replacement
    expect(b.join()).toBe(true);
    expect(a.leave()).toBe(true);
    expect(a.count()).toBe(1);
  });
});
