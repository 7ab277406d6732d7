/**
 * The keyvalue-nats provider over a real nats-server with JetStream, driven through its wire
 * (the requests hosts send): coalesced increments and increments applied once per invocation.
 */
import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subjects as buildSubjects } from '../lattice/subjects/index.ts';
import { decode, encode, type InvocationRef, type ProviderReply, type ProviderRequest } from '../lattice/wire/index.ts';
import { startProvider, type ProviderService } from '../providers/index.ts';
import { startNats, uniqueLattice, type NatsServer } from './harness/index.ts';

describe('keyvalue-nats provider', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let other: NatsConnection;
  let providers: ProviderService[] = [];
  const lattice = uniqueLattice('kv');
  const subjects = buildSubjects(lattice);
  const bucket = `kv-${lattice}`;

  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
    // Two provider processes' worth (two connections): batches from both race by compare-and-set.
    const logger = pino({ level: 'silent' });
    other = await connect({ servers: nats.url });
    providers = [startProvider('keyvalue-nats', nc, subjects, logger), startProvider('keyvalue-nats', other, subjects, logger)];
    await nc.flush();
  });
  afterAll(async () => {
    for (const p of providers) await p.close();
    await other?.close();
    await nc?.close();
    await nats?.stop();
  });

  async function call(op: string, args: unknown[], invocation?: InvocationRef): Promise<unknown> {
    const request: ProviderRequest = { actor: 'counter', version: '1.0.0', op, config: { bucket }, args, invocation };
    const reply = decode<ProviderReply>((await nc.request(subjects.provider('keyvalue-nats'), encode(request), { timeout: 20_000 })).data);
    if (!reply.ok) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
    return reply.value;
  }
  const text = (v: unknown) => new TextDecoder().decode(v as Uint8Array);

  it('keyvalue - a retried increment (same invocation id and sequence) is applied once and answers the first value', async () => {
    const first = { id: randomUUID(), seq: 1 };
    expect(await call('increment', ['retried', '1'], first)).toBe('1');
    expect(await call('increment', ['retried', '1'], { id: randomUUID(), seq: 1 })).toBe('2');
    // The retry of the first invocation, after another increment: its recorded value.
    expect(await call('increment', ['retried', '1'], first)).toBe('1');
    // The same invocation's next call (seq 2) is a new increment.
    expect(await call('increment', ['retried', '1'], { ...first, seq: 2 })).toBe('3');
    // Concurrent copies of one call (a retry racing its original) count once too.
    const racing = { id: randomUUID(), seq: 1 };
    const copies = await Promise.all(Array.from({ length: 5 }, () => call('increment', ['retried', '1'], racing)));
    expect(new Set(copies)).toEqual(new Set(['4']));
    // get still reads the plain stored number.
    expect(text(await call('get', ['retried']))).toBe('4');
  });

  it('keyvalue - 300 concurrent increments of one key from two providers each get a distinct value, none lost', async () => {
    const values = await Promise.all(Array.from({ length: 300 }, () => call('increment', ['hot', '1'], { id: randomUUID(), seq: 1 })));
    expect(values.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(text(await call('get', ['hot']))).toBe('300');
  });

  it('keyvalue - increments after a set or a delete start from that value; a non-integer value is a clear error', async () => {
    await call('set', ['mixed', new TextEncoder().encode('41')]);
    expect(await call('increment', ['mixed', '1'], { id: randomUUID(), seq: 1 })).toBe('42');
    await call('delete', ['mixed']);
    expect(await call('exists', ['mixed'])).toBe(false);
    expect(await call('increment', ['mixed', '-3'], { id: randomUUID(), seq: 1 })).toBe('-3');
    await call('set', ['mixed', new TextEncoder().encode('not a number')]);
    await expect(call('increment', ['mixed', '1'], { id: randomUUID(), seq: 1 })).rejects.toMatchObject({ code: 'TRELLIS_BAD_REQUEST', message: expect.stringContaining('not an integer') });
  });

  it("keyvalue - a request naming one of Trellis's own buckets is refused, and the bucket is untouched", async () => {
    // The security documents live in the config bucket: an issuers list an actor could delete.
    const config = await nc.jetstream().views.kv(subjects.buckets.config);
    await config.put('security.issuers', new TextEncoder().encode('{"issuers":[],"updatedAt":"x"}'));
    for (const reserved of [subjects.buckets.config, subjects.buckets.links, 'trellis-elsewhere-config']) {
      const request: ProviderRequest = { actor: 'counter', op: 'delete', config: { bucket: reserved }, args: ['security.issuers'] };
      const reply = decode<ProviderReply>((await nc.request(subjects.provider('keyvalue-nats'), encode(request), { timeout: 20_000 })).data);
      expect(reply, reserved).toMatchObject({ ok: false, error: { code: 'TRELLIS_RESERVED_BUCKET' } });
    }
    expect((await config.get('security.issuers'))?.operation).toBe('PUT');
  });
});
