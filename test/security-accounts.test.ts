/**
 * Hard isolation of lattices with NATS accounts: one server, two accounts (each with JetStream),
 * the same lattice name in both. A host, its actors, links and artifacts in one account are
 * invisible from the other: no subject crosses (a `>` subscriber hears only its own account),
 * the other's KV buckets and object store are different streams, invocations find no responder.
 */
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type Host } from '../host/index.ts';
import { connectControl, connectParticipant, type ControlClient } from '../lattice/control/index.ts';
import { openLinks } from '../lattice/links/index.ts';
import { compileNatsConnect } from '../lattice/options/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { openArtifacts } from '../lattice/state/index.ts';
import { deployExample, waitFor } from './harness/index.ts';
import { startConfiguredNats, type ConfiguredNats } from './harness/secure-nats.ts';

describe('security - one account per lattice', { timeout: 120_000 }, () => {
  // The same lattice name in both accounts: isolation must not depend on names.
  const lattice = 'prod';
  const pw = { a: `pa-${Math.random().toString(36).slice(2)}`, b: `pb-${Math.random().toString(36).slice(2)}` };
  let nats: ConfiguredNats;
  let hostA: Host;
  let hostB: Host;
  let a: ControlClient;
  let b: ControlClient;
  beforeAll(async () => {
    nats = await startConfiguredNats(`accounts {
  A: { jetstream: enabled, users = [ { user: a, password: "${pw.a}" } ] }
  B: { jetstream: enabled, users = [ { user: b, password: "${pw.b}" } ] }
}`);
    const auth = (u: 'a' | 'b') => ({ natsUser: u, natsPassword: pw[u] });
    hostA = await startHost({ nats: nats.url, lattice, name: 'host-a', logLevel: 'silent', auth: auth('a'), cacheDir: `${nats.dir}/cache-a`, beatMs: 200 });
    hostB = await startHost({ nats: nats.url, lattice, name: 'host-b', logLevel: 'silent', auth: auth('b'), cacheDir: `${nats.dir}/cache-b`, beatMs: 200 });
    a = await connectControl({ nats: nats.url, lattice, auth: auth('a') });
    b = await connectControl({ nats: nats.url, lattice, auth: auth('b') });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await hostA?.stop();
    await hostB?.stop();
    await nats?.stop();
  });

  it('accounts - each account sees only its own hosts, and a `>` subscriber hears nothing of the other', async () => {
    expect((await a.pingHosts()).map((h) => h.id)).toEqual([hostA.id]);
    expect((await b.pingHosts()).map((h) => h.id)).toEqual([hostB.id]);
    const spy: NatsConnection = await connectParticipant(compileNatsConnect({ servers: [nats.url], lattice, role: 'operator', auth: { natsUser: 'a', natsPassword: pw.a } }), 'spy');
    const heard: string[] = [];
    const sub = spy.subscribe('>', { callback: (_err, msg) => heard.push(`${msg.subject} ${new TextDecoder().decode(msg.data)}`) });
    try {
      // B's host beats every 200 ms and answers a ping: none of it may reach account A.
      await b.pingHosts();
      await waitFor(() => heard.some((h) => h.includes(hostA.id)), { what: "account A's own beats" });
      await new Promise((r) => setTimeout(r, 1000));
      expect(heard.filter((h) => h.includes(hostB.id))).toEqual([]);
    } finally {
      sub.unsubscribe();
      await spy.close();
    }
  });

  it('accounts - KV and objects of one account are not the other\'s: links and artifacts stay apart, invocations find no responder', async () => {
    const digest = await deployExample(b, 'hello', [hostB], { version: '1.0.0' });
    await (await openLinks(b.nc, b.subjects)).put('hello', 'keyvalue-nats', { bucket: 'only-b' });
    // Same bucket names, different accounts: A has no such link and no such artifact.
    expect(await (await openLinks(a.nc, a.subjects)).list('hello')).toEqual([]);
    await expect((await openArtifacts(a.nc, a.subjects)).fetch(digest)).rejects.toMatchObject({ code: 'TRELLIS_DIGEST_NOT_FOUND' });
    await expect((await openArtifacts(b.nc, b.subjects)).fetch(digest)).resolves.toBeInstanceOf(Uint8Array);
    await using rpcA = await createRpcClient(a.nc, { lattice, caller: 'a' });
    await using rpcB = await createRpcClient(b.nc, { lattice, caller: 'b' });
    const req = { method: 'GET', path: '/', query: 'name=b', headers: [], body: new Uint8Array() };
    const answered = await waitFor(() => rpcB.invoke('hello', req).catch(() => undefined), { timeoutMs: 20_000, what: 'hello in account B' });
    expect(new TextDecoder().decode(answered.response.body)).toContain('b');
    await expect(rpcA.invoke('hello', req, { deadlineMs: 3000 })).rejects.toMatchObject({ code: expect.stringMatching(/TRELLIS_(NO_RESPONDERS|UNKNOWN_VERSION|NOT_FOUND)/) });
  });
});
