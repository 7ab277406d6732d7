/** The controller's leader lease on a real nats-server: one leader, by the bucket's own TTL. */
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLease } from '../lattice/reconciler/index.ts';
import { subjects as buildSubjects } from '../lattice/subjects/index.ts';
import { startNats, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';

describe('leader lease', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('lease - a candidate with a longer TTL than the bucket keeps leads only as long as the bucket keeps the lease', async () => {
    const subjects = buildSubjects(uniqueLattice('lease'));
    // The first candidate creates the bucket with a 1 s TTL; it then lets go.
    const short = await openLease(nc, subjects, { id: 'short', name: 'short', ttlMs: 1000 });
    expect(await short.tick()).toBe(true);
    await short.release();
    // A candidate configured for 20 s takes the lease in that bucket.
    const long = await openLease(nc, subjects, { id: 'long', name: 'long', ttlMs: 20_000 });
    expect(await long.tick()).toBe(true);
    const tookAt = Date.now();
    // The server drops the lease after the bucket's 1 s: a third candidate can take it then, and
    // by that time the long candidate must no longer believe it leads.
    const third = await openLease(nc, subjects, { id: 'third', name: 'third', ttlMs: 1000 });
    await waitFor(async () => (await third.tick()) || undefined, { timeoutMs: 10_000, intervalMs: 100, what: 'the lease to expire on the server' });
    expect(long.held()).toBe(false);
    expect(Date.now() - tookAt).toBeLessThan(10_000);
    await third.release();
  });
});
