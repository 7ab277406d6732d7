import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type Host } from '../host/index.ts';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openLinks } from '../lattice/links/index.ts';
import { digestOf, openArtifacts } from '../lattice/state/index.ts';
import { decodeEvent, type LatticeEvent } from '../lattice/wire/index.ts';
import { actorSpec, markDeleting, openAppDocs, putRevision } from './harness/apps.ts';
import { exampleActor, startNats, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';

describe('reconciler: failed starts and provider references', () => {
  let nats: NatsServer;
  let hosts: Host[];
  let client: ControlClient;
  let docs: Awaited<ReturnType<typeof openAppDocs>>;
  const events: LatticeEvent[] = [];
  const lattice = uniqueLattice('recf');

  beforeAll(async () => {
    nats = await startNats();
    // Caches of their own: an artifact cached by an earlier run must not make "missing" pass.
    hosts = await Promise.all([0, 1].map(async (i) => startHost({ nats: nats.url, lattice, logLevel: 'silent', name: `f${i}`, cacheDir: await mkdtemp(path.join(os.tmpdir(), 'trellis-cache-')) })));
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    client.nc.subscribe(client.subjects.allEvents(), { callback: (_e, m) => events.push(decodeEvent(m.data)) });
    docs = await openAppDocs(client.nc, client.subjects);
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await Promise.all((hosts ?? []).map((h) => h.stop()));
    await nats?.stop();
  });

  it('reconciler - a missing artifact makes the app Failed with the reason, retried with backoff, and Deployed once it is pushed', async () => {
    const bytes = new Uint8Array(await readFile(exampleActor('echo-c')));
    const digest = digestOf(bytes);
    await putRevision(docs, { name: 'late', actors: [actorSpec('late', '1.0.0', digest, 2)], providers: [] });
    const failed = await waitFor(async () => {
      const s = (await docs.statuses.get('late'))?.value;
      return s?.phase === 'Failed' ? s : undefined;
    }, { timeoutMs: 30_000, what: 'Failed' }).catch(async (err: Error) => {
      throw new Error(`${err.message}; last status ${JSON.stringify((await docs.statuses.get('late'))?.value)}`);
    });
    expect(failed.reasons.join('\n')).toContain('TRELLIS_DIGEST_NOT_FOUND');
    await new Promise((r) => setTimeout(r, 6000));
    const attempts = events.filter((e) => e.kind === 'reconcile_failed' && e.data.app === 'late');
    // Two hosts, retries 1, 2, 4 s apart (each fetch waits up to 3 s for the artifact): a handful, never a tight loop.
    console.log(`missing artifact: ${attempts.length} failed attempts until 6 s after the app was first Failed`);
    expect(attempts.length).toBeGreaterThan(0);
    expect(attempts.length).toBeLessThanOrEqual(10);
    expect(attempts[0]!.data).toMatchObject({ code: 'TRELLIS_DIGEST_NOT_FOUND', reason: expect.stringContaining(digest), retryInMs: expect.any(Number) });
    await (await openArtifacts(client.nc, client.subjects)).push(bytes);
    await waitFor(async () => (await docs.statuses.get('late'))?.value.phase === 'Deployed', { timeoutMs: 60_000, what: 'Deployed once pushed' });
    await markDeleting(docs, 'late');
    await waitFor(async () => (await docs.revisions.get('late')) === undefined, { timeoutMs: 30_000, what: 'late deleted' });
  });

  it('reconciler - apps hold provider references; deleting one drops only its own, a hand-started provider keeps running', async () => {
    const [a, b] = hosts;
    await client.startProvider(a!.id, { provider: 'keyvalue-nats' });
    await putRevision(docs, { name: 'kv', actors: [], providers: [{ kind: 'keyvalue-nats', replicas: 'all', spread: [{ name: 'any', requirements: {}, weight: 1 }] }] });
    await waitFor(async () => {
      const invs = await Promise.all(hosts.map((h) => client.getInventory(h.id)));
      return invs.every((inv) => inv.providers.some((p) => p.name === 'keyvalue-nats' && p.owners?.includes('kv')));
    }, { timeoutMs: 30_000, what: 'references on both hosts' });
    const onB = (await client.getInventory(b!.id)).providers[0]!;
    await markDeleting(docs, 'kv');
    await waitFor(async () => (await docs.revisions.get('kv')) === undefined, { timeoutMs: 30_000, what: 'kv deleted' });
    expect((await client.getInventory(a!.id)).providers).toMatchObject([{ name: 'keyvalue-nats', owners: [], manual: true, health: 'ok' }]);
    expect((await client.getInventory(b!.id)).providers).toEqual([]);
    expect(() => process.kill(onB.pid!, 0)).toThrow();
    expect(events.some((e) => e.kind === 'app_deleted' && e.data.app === 'kv')).toBe(true);
  });

  it('reconciler - a provider that a hand-started actor uses keeps running (by hand) when the app that placed it goes', async () => {
    const [, b] = hosts;
    const digest = (await (await openArtifacts(client.nc, client.subjects)).push(new Uint8Array(await readFile(exampleActor('counter'))))).digest;
    await client.startActor(b!.id, { actor: 'tally', version: '1.0.0', digest, count: 1 });
    await (await openLinks(client.nc, client.subjects)).put('tally', 'keyvalue-nats', { bucket: `t-${lattice}` });
    await putRevision(docs, { name: 'kv2', actors: [], providers: [{ kind: 'keyvalue-nats', replicas: 1, spread: [{ name: 'b', requirements: { hostname: os.hostname() }, weight: 1 }] }] });
    const holder = await waitFor(async () => {
      for (const h of hosts) if ((await client.getInventory(h.id)).providers.some((p) => p.owners?.includes('kv2'))) return h;
      return undefined;
    }, { timeoutMs: 30_000, what: 'kv2 holds the provider' });
    await markDeleting(docs, 'kv2');
    await waitFor(async () => (await docs.revisions.get('kv2')) === undefined, { timeoutMs: 30_000, what: 'kv2 deleted' });
    expect((await client.getInventory(holder.id)).providers.find((p) => p.name === 'keyvalue-nats')).toMatchObject({ owners: [], manual: true, health: 'ok' });
    await client.stopActor(b!.id, { actor: 'tally' });
  });
});
