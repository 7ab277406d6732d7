/**
 * The typed KV document store and the JetStream error classifier, against a real nats-server:
 * revision checks (update, create-only, delete), follow, list, and the stores built on it
 * (links, weights, HTTP routes).
 */
import { connect, type KV, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDocuments, type DocumentKind, type DocumentStore } from '../lattice/documents/index.ts';
import { JetStreamCodes, TrellisError, isJetStreamConflict, isJetStreamUnsettled, isTooFewServersForReplicas, jetStreamErrorCode } from '../lattice/errors/index.ts';
import { matchRoute, openHttpRoutes } from '../lattice/http-routes/index.ts';
import { openLinks, type Link } from '../lattice/links/index.ts';
import { openKv } from '../lattice/state/index.ts';
import { subjects as buildSubjects, token, type Subjects } from '../lattice/subjects/index.ts';
import { isRecord } from '../lattice/wire/index.ts';
import { openWeights } from '../lattice/weights/index.ts';
import { startCluster, startNats, uniqueLattice, type NatsServer } from './harness/index.ts';

/** A small document kind for the tests: a note with a title, keyed by its id. */
interface Note {
  id: string;
  title: string;
}
const noteKind: DocumentKind<Note> = {
  name: 'note',
  bucket: (s) => `trellis-${s.lattice}-notes`,
  key: (note) => note.id,
  decode(value) {
    if (!isRecord(value) || typeof value.title !== 'string') throw new TrellisError('TRELLIS_BAD_REQUEST', 'note needs a title');
    return { id: token(value.id as string, 'note id'), title: value.title };
  },
};

const conflict = expect.objectContaining({ code: 'TRELLIS_CONFLICT' });

describe('document store on one nats-server', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let subjects: Subjects;
  let notes: DocumentStore<Note>;
  let kv: KV;

  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
    subjects = buildSubjects(uniqueLattice('docs'));
    notes = await openDocuments(nc, subjects, noteKind);
    kv = await openKv(nc, noteKind.bucket(subjects));
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('documents - put, get, list and delete return values with their revisions', async () => {
    const a = await notes.put({ id: 'a', title: 'first' });
    expect(a).toEqual({ key: 'a', value: { id: 'a', title: 'first' }, revision: expect.any(Number) });
    const a2 = await notes.put({ id: 'a', title: 'second' });
    expect(a2.revision).toBeGreaterThan(a.revision);
    await notes.put({ id: 'b', title: 'other' });
    expect(await notes.get('a')).toEqual(a2);
    expect((await notes.list()).map((d) => [d.key, d.value.title])).toEqual([['a', 'second'], ['b', 'other']]);
    expect(await notes.delete('b')).toBe(true);
    expect(await notes.delete('b')).toBe(false);
    expect(await notes.get('b')).toBeUndefined();
    expect(await notes.get('never')).toBeUndefined();
  });

  it('documents - a put at the read revision wins; one at a stale revision is TRELLIS_CONFLICT and writes nothing', async () => {
    const read = await notes.put({ id: 'cas', title: 'v1' });
    const written = await notes.put({ id: 'cas', title: 'v2' }, { expectRevision: read.revision });
    expect(written.revision).toBeGreaterThan(read.revision);
    await expect(notes.put({ id: 'cas', title: 'lost' }, { expectRevision: read.revision })).rejects.toThrowError(conflict);
    await expect(notes.put({ id: 'cas', title: 'lost' }, { expectRevision: read.revision })).rejects.toThrowError(/note cas is no longer at revision/);
    expect((await notes.get('cas'))?.value.title).toBe('v2');
    // A revision on a key that never existed is a conflict too, not a silent create.
    await expect(notes.put({ id: 'nobody', title: 'x' }, { expectRevision: 1 })).rejects.toThrowError(conflict);
    expect(await notes.get('nobody')).toBeUndefined();
  });

  it('documents - create-only (expectRevision 0) succeeds once, and again after a delete', async () => {
    const first = await notes.put({ id: 'lease', title: 'holder-1' }, { expectRevision: 0 });
    await expect(notes.put({ id: 'lease', title: 'holder-2' }, { expectRevision: 0 })).rejects.toThrowError(/note lease already exists/);
    expect((await notes.get('lease'))?.value.title).toBe('holder-1');
    expect(await notes.delete('lease', { expectRevision: first.revision })).toBe(true);
    const again = await notes.put({ id: 'lease', title: 'holder-2' }, { expectRevision: 0 });
    expect(again.revision).toBeGreaterThan(first.revision);
  });

  it('documents - a delete at a stale revision is TRELLIS_CONFLICT and keeps the document', async () => {
    const v1 = await notes.put({ id: 'del', title: 'v1' });
    const v2 = await notes.put({ id: 'del', title: 'v2' });
    await expect(notes.delete('del', { expectRevision: v1.revision })).rejects.toThrowError(conflict);
    expect((await notes.get('del'))?.value.title).toBe('v2');
    expect(await notes.delete('del', { expectRevision: v2.revision })).toBe(true);
    // Deleted since: the old revision no longer holds.
    await expect(notes.delete('del', { expectRevision: v2.revision })).rejects.toThrowError(conflict);
  });

  it('documents - of 20 concurrent writers at one revision exactly one wins', async () => {
    const base = await notes.put({ id: 'race', title: 'start' });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => notes.put({ id: 'race', title: `w${i}` }, { expectRevision: base.revision })));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'TRELLIS_CONFLICT' });
    expect((await notes.get('race'))?.value.title).toBe((won[0] as PromiseFulfilledResult<{ value: Note }>).value.value.title);
  });

  it('documents - bad revisions and invalid documents are refused before anything is written', async () => {
    for (const expectRevision of [-1, 1.5, Number.NaN]) {
      await expect(notes.put({ id: 'bad', title: 'x' }, { expectRevision })).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    }
    await expect(notes.delete('bad', { expectRevision: 0 })).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    await expect(notes.put({ id: 'bad' } as Note)).rejects.toThrowError(/note needs a title/);
    await expect(notes.put({ id: 'a.b>', title: 'x' })).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    expect(await notes.get('bad')).toBeUndefined();
    for (const key of ['', 'a b', 'a.', '.a', 'a..b', 'a.*', 'a.>']) {
      await expect(notes.get(key)).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
      await expect(notes.delete(key)).rejects.toThrowError(/note key .* is not valid/);
    }
  });

  it('documents - an unreadable stored value reads as absent and an unconditional put replaces it', async () => {
    await kv.put('corrupt', new TextEncoder().encode('{not json'));
    await kv.put('wrong', new TextEncoder().encode('{"id":"wrong"}'));
    expect(await notes.get('corrupt')).toBeUndefined();
    expect(await notes.get('wrong')).toBeUndefined();
    expect((await notes.list()).map((d) => d.key)).not.toContain('corrupt');
    await notes.put({ id: 'corrupt', title: 'fixed' });
    expect((await notes.get('corrupt'))?.value.title).toBe('fixed');
  });

  it('documents - follow delivers every current document before it resolves, then each change and delete', async () => {
    const store = await openDocuments(nc, subjects, { ...noteKind, bucket: (s) => `trellis-${s.lattice}-follow` });
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.put({ id: `n${i}`, title: `t${i}` })));
    const seen = new Map<string, { title?: string; revision: number }>();
    const stop = await store.follow(({ key, value, revision }) => seen.set(key, { title: value?.title, revision }));
    try {
      // Synchronously after it resolved: all 300, not just the ones that happened to arrive.
      expect(seen.size).toBe(300);
      const changed = await store.put({ id: 'n7', title: 'changed' });
      await store.delete('n8');
      await expect.poll(() => seen.get('n8')?.title, { timeout: 10_000 }).toBeUndefined();
      await expect.poll(() => seen.get('n7'), { timeout: 10_000 }).toEqual({ title: 'changed', revision: changed.revision });
      expect(seen.has('n8')).toBe(true);
    } finally {
      stop();
    }
    // Stopped: later changes are not delivered.
    await store.put({ id: 'n9', title: 'after stop' });
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.get('n9')?.title).toBe('t9');
  });

  it('documents - list and follow take a key pattern', async () => {
    const store = await openDocuments(nc, subjects, { ...noteKind, bucket: (s) => `trellis-${s.lattice}-pattern`, decode: (v) => v as Note });
    for (const id of ['shop.a', 'shop.b', 'blog.a']) await store.put({ id, title: id });
    expect((await store.list('shop.*')).map((d) => d.key)).toEqual(['shop.a', 'shop.b']);
    expect((await store.list()).map((d) => d.key)).toEqual(['blog.a', 'shop.a', 'shop.b']);
    expect(await store.list('none.*')).toEqual([]);
  });

  it('jetstream errors - classified by API error code, from the real server', async () => {
    const rev = await kv.put('code', new Uint8Array([1]));
    const wrongSeq = await kv.update('code', new Uint8Array([2]), rev + 100).catch((err: unknown) => err);
    expect(jetStreamErrorCode(wrongSeq)).toBe(JetStreamCodes.streamWrongLastSequence);
    expect(isJetStreamConflict(wrongSeq)).toBe(true);
    expect(isJetStreamUnsettled(wrongSeq)).toBe(false);

    const jsm = await nc.jetstreamManager();
    const missing = await jsm.streams.info(`missing-${Date.now()}`).catch((err: unknown) => err);
    expect(jetStreamErrorCode(missing)).toBe(JetStreamCodes.streamNotFound);
    expect(isJetStreamUnsettled(missing)).toBe(true);
    expect(isJetStreamConflict(missing)).toBe(false);

    const r3 = await nc.jetstream().views.kv(`r3-${Date.now()}`, { replicas: 3 }).catch((err: unknown) => err);
    expect(jetStreamErrorCode(r3)).toBe(JetStreamCodes.replicasNotSupported);
    expect(isTooFewServersForReplicas(r3)).toBe(true);

    const inUse = await jsm.streams.add({ name: `KV_${noteKind.bucket(subjects)}`, subjects: [`other-${Date.now()}.>`] }).catch((err: unknown) => err);
    expect(jetStreamErrorCode(inUse)).toBe(JetStreamCodes.streamNameInUse);

    // Not JetStream API failures: no code, and only the core timeout/no-responders are unsettled.
    expect(jetStreamErrorCode(new Error('wrong last sequence: 3'))).toBeUndefined();
    expect(isJetStreamConflict(new Error('wrong last sequence: 3'))).toBe(false);
    expect(isJetStreamUnsettled(new Error('stream not found'))).toBe(false);
    expect(jetStreamErrorCode(null)).toBeUndefined();
  });

  it('jetstream errors - no responders (JetStream off) is unsettled by its core code', async () => {
    await using plain = await startNats({ jetstream: false });
    const other = await connect({ servers: plain.url });
    try {
      const err = await other.jetstream({ timeout: 1000 }).views.kv('x').catch((e: unknown) => e);
      expect(jetStreamErrorCode(err)).toBeUndefined();
      expect(isJetStreamUnsettled(err)).toBe(true);
      // openKv retries within its budget, then says what to check.
      await expect(openKv(other, 'x')).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_NATS_UNAVAILABLE' }));
    } finally {
      await other.close();
    }
  });

  it('weights - keep their bucket name and read weights stored before the rename', async () => {
    const s = buildSubjects(uniqueLattice('w'));
    expect(s.buckets.weights).toBe(`trellis-${s.lattice}-routes`);
    const raw = await openKv(nc, s.buckets.weights);
    await raw.put('shop', new TextEncoder().encode(JSON.stringify({ actor: 'shop', weights: { '1.0.0': 90, '1.1.0': 10 }, updatedAt: '2026-01-01T00:00:00.000Z' })));
    const weights = await openWeights(nc, s);
    expect(await weights.get('shop')).toEqual({ actor: 'shop', weights: { '1.0.0': 90, '1.1.0': 10 }, updatedAt: '2026-01-01T00:00:00.000Z' });
    const seen = new Map<string, unknown>();
    const stop = await weights.follow((actor, doc) => seen.set(actor, doc?.weights));
    stop();
    expect(seen.get('shop')).toEqual({ '1.0.0': 90, '1.1.0': 10 });
    expect(await weights.delete('shop')).toBe(true);
    expect(await weights.delete('shop')).toBe(false);
  });

  it('links - stored per actor and interface; a missing one is TRELLIS_NOT_FOUND on delete', async () => {
    const s = buildSubjects(uniqueLattice('l'));
    const links = await openLinks(nc, s);
    await links.put('counter', 'keyvalue-nats', { bucket: 'counters' });
    await links.put('counter', 'keyvalue-nats', { bucket: 'counters2' });
    await links.put('fetcher', 'http-client', {});
    expect((await links.get('counter', 'keyvalue'))?.config).toEqual({ bucket: 'counters2' });
    expect((await links.list('counter')).map((l) => l.provider)).toEqual(['keyvalue-nats']);
    expect((await links.list()).map((l) => l.actor)).toEqual(['counter', 'fetcher']);
    await expect(links.put('counter', 'keyvalue-nats', { bucket: 'bad name' })).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    await expect(links.put('counter', 'nope', {})).rejects.toThrowError(/unknown provider "nope"/);
    const cache = new Map<string, Link>();
    const stop = await links.follow(cache);
    try {
      expect([...cache.keys()].sort()).toEqual(['counter.keyvalue', 'fetcher.http-client']);
      await links.delete('fetcher', 'http-client');
      await expect.poll(() => cache.has('fetcher.http-client'), { timeout: 10_000 }).toBe(false);
    } finally {
      stop();
    }
    await expect(links.delete('fetcher', 'http-client')).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_NOT_FOUND' }));
  });

  it('http routes - a Host is stored without its port, so the route matches; follow hands on all routes at once', async () => {
    const s = buildSubjects(uniqueLattice('h'));
    const routes = await openHttpRoutes(nc, s);
    const hosted = await routes.add('/shop/', 'shop', 'Shop.Example.com:8080');
    expect(hosted).toMatchObject({ prefix: '/shop', host: 'shop.example.com', actor: 'shop' });
    await routes.add('/', 'site');
    const calls: number[] = [];
    let current: ReturnType<typeof matchRoute>[] = [];
    const stop = await routes.follow((all) => {
      calls.push(all.length);
      current = [matchRoute(all, '/shop/cart', 'shop.example.com:443'), matchRoute(all, '/shop/cart', 'other.example.com')];
    });
    try {
      expect(calls).toEqual([2]);
      expect(current.map((r) => r?.actor)).toEqual(['shop', 'site']);
    } finally {
      stop();
    }
    expect((await routes.list()).map((r) => `${r.host ?? '*'}${r.prefix}`)).toEqual(['*/', 'shop.example.com/shop']);
    await expect(routes.add('shop', 'shop')).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    await routes.delete('/shop', 'shop.example.com:9999');
    await expect(routes.delete('/shop', 'shop.example.com')).rejects.toThrowError(expect.objectContaining({ code: 'TRELLIS_NOT_FOUND' }));
    // A route stored by an older version, its Host with the port (and the port in its key), reads
    // without the port and can still be deleted by the name it was added with.
    const raw = await openKv(nc, s.buckets.httpRoutes);
    await raw.put(Buffer.from('old.example.com:8080|/old').toString('base64url'), new TextEncoder().encode(JSON.stringify({ prefix: '/old', host: 'old.example.com:8080', actor: 'old', createdAt: '2026-01-01T00:00:00.000Z' })));
    expect((await routes.list()).find((r) => r.prefix === '/old')?.host).toBe('old.example.com');
    await routes.delete('/old', 'old.example.com:8080');
    expect((await routes.list()).map((r) => r.prefix)).toEqual(['/']);
  });
});

describe('buckets on a cluster too small for 3 replicas', () => {
  it('documents - a 2-node cluster refuses 3 replicas with "no suitable peers" by code, and the store falls back to 1', async () => {
    await using cluster = await startCluster({ size: 2 });
    const nc = await connect({ servers: cluster.urls });
    try {
      const err = await nc.jetstream().views.kv(`r3-${Date.now()}`, { replicas: 3 }).catch((e: unknown) => e);
      expect(jetStreamErrorCode(err)).toBe(JetStreamCodes.clusterNoPeers);
      expect(isTooFewServersForReplicas(err)).toBe(true);
      const notes = await openDocuments(nc, buildSubjects(uniqueLattice('c')), noteKind);
      const written = await notes.put({ id: 'x', title: 'on two nodes' }, { expectRevision: 0 });
      expect(await notes.get('x')).toEqual(written);
    } finally {
      await nc.close();
    }
  });
});
