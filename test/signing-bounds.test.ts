/**
 * Signed capabilities bound an actor for as long as any of its instances runs, and track the
 * host's trust as it changes: on real host processes, providers and nats-server.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createAccount, createUser } from 'nkeys.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openLinks } from '../lattice/links/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { openIssuers, signComponent } from '../lattice/signing/index.ts';
import { openArtifacts } from '../lattice/state/index.ts';
import { decodeEvent, type LatticeEvent } from '../lattice/wire/index.ts';
import { exampleActor, spawnHost, startNats, uniqueLattice, waitFor, type HostProcess, type NatsServer } from './harness/index.ts';
import { fixtureActor } from './harness/fixtures.ts';

describe('signed capabilities on a real host', () => {
  let nats: NatsServer;
  let client: ControlClient;
  let host: HostProcess;
  let actorBytes: Uint8Array;
  let server: Server;
  let port = 0;
  /** Responses the test holds back: an actor waits in its fetch until the test answers. */
  const held: ServerResponse[] = [];
  const lattice = uniqueLattice('bound');
  const issuer = createAccount();
  const bucket = `bound-${lattice}`;

  const sign = (caps: string[]) => signComponent(actorBytes, { issuer, subject: createUser().getPublicKey(), name: 'ftc', caps }).bytes;
  const start = async (bytes: Uint8Array, version: string, policy: Record<string, unknown> = { allowedHosts: [`127.0.0.1:${port}`] }, actor = 'ftc') => {
    const { digest } = await (await openArtifacts(client.nc, client.subjects)).push(bytes);
    await client.startActor(host.id, { actor, version, digest, count: 1, policy });
  };
  const invoke = async (version: string, key: string, query?: string) => {
    await using rpc = await createRpcClient(client.nc, { lattice });
    const url = encodeURIComponent(`http://127.0.0.1:${port}/`);
    const { response } = await rpc.invoke('ftc', { method: 'GET', path: '/', query: query ?? `url=${url}&key=${key}`, headers: [], body: new Uint8Array() }, { version, deadlineMs: 60_000 });
    return new TextDecoder().decode(response.body);
  };

  beforeAll(async () => {
    actorBytes = new Uint8Array(await readFile(await fixtureActor('fetch-then-count')));
    server = createServer((_req, res) => held.push(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    nats = await startNats();
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    host = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 500, extraArgs: ['--allowed-issuer', issuer.getPublicKey()] });
    await client.startProvider(host.id, { provider: 'keyvalue-nats' });
    await client.startProvider(host.id, { provider: 'http-client' });
    const links = await openLinks(client.nc, client.subjects);
    await links.put('ftc', 'keyvalue-nats', { bucket });
    await links.put('ftc', 'http-client', {});
  }, 240_000);
  afterAll(async () => {
    for (const res of held) res.destroy();
    server?.closeAllConnections();
    server?.close();
    await host?.[Symbol.asyncDispose]();
    await client?.close();
    await nats?.stop();
  });

  it('signing bounds - signed with keyvalue, the fetch-then-count actor counts (the control case)', async () => {
    await start(sign(['http-client', 'keyvalue']), '1.0.0');
    const answer = invoke('1.0.0', 'control');
    await waitFor(() => held.length > 0, { what: 'the actor fetching', timeoutMs: 30_000 });
    held.shift()!.end('ok');
    expect(await answer).toBe('1');
  });

  it('signing bounds - a keyvalue call made while the actor is stopping is still bound by its signature', async () => {
    await start(sign(['http-client']), '2.0.0');
    const answer = invoke('2.0.0', 'stopping');
    await waitFor(() => held.length > 0, { what: 'the actor fetching', timeoutMs: 30_000 });
    // Stop while the invocation waits in its fetch: the stop waits for it to finish.
    const stopping = client.stopActor(host.id, { actor: 'ftc', version: '2.0.0' });
    await waitFor(async () => !(await client.getInventory(host.id)).actors.some((a) => a.version === '2.0.0'), { what: 'the version gone from inventory' });
    held.shift()!.end('ok');
    const text = await answer;
    expect(text).toContain('TRELLIS_CAPABILITY_DENIED');
    expect(text).toContain('signed without capability keyvalue');
    await stopping;
    const kv = await client.nc.jetstream().views.kv(bucket);
    expect(await kv.get('stopping')).toBeNull();
  });

  it('signing bounds - calling actors is refused on each call without the actor-call capability', async () => {
    // (Outbound HTTP needs allowedHosts, which a start without http-client already refuses.)
    await start(sign(['keyvalue']), '3.0.0', {});
    const called = await invoke('3.0.0', '', 'call=nobody');
    expect(called).toContain('TRELLIS_CAPABILITY_DENIED');
    expect(called).toContain('signed without capability actor-call');
    // Signed with actor-call, the same call gets past the bound (and fails only for want of a callee).
    await start(sign(['actor-call']), '3.1.0', {});
    const allowed = await invoke('3.1.0', '', 'call=nobody');
    expect(allowed).toContain('denied:');
    expect(allowed).not.toContain('CAPABILITY_DENIED');
  });

  it("signing bounds - a host's own issuers and the lattice's list are trusted together", async () => {
    const echo = new Uint8Array(await readFile(exampleActor('echo-c')));
    const signedBy = (by: ReturnType<typeof createAccount>) => signComponent(echo, { issuer: by, subject: createUser().getPublicKey(), name: 'echo', caps: [] }).bytes;
    const latticeIssuer = createAccount();
    await (await openIssuers(client.nc, client.subjects)).add([latticeIssuer.getPublicKey()]);
    const tryStart = (bytes: Uint8Array, version: string) => start(bytes, version, {}, 'echo').then(() => 'started', (err: { code?: string }) => err.code);
    await waitFor(async () => (await tryStart(signedBy(latticeIssuer), `4.0.${Date.now()}`)) === 'started', { what: "the lattice's issuer trusted" });
    expect(await tryStart(signedBy(issuer), '4.1.0')).toBe('started');
    expect(await tryStart(signedBy(createAccount()), '4.2.0')).toBe('TRELLIS_UNTRUSTED_ISSUER');
    expect(await tryStart(echo, '4.3.0')).toBe('TRELLIS_UNSIGNED');
  });
});

describe('trust changes on a running host', () => {
  let nats: NatsServer;
  let client: ControlClient;
  let host: HostProcess;
  const lattice = uniqueLattice('retrust');
  const events: LatticeEvent[] = [];
  const issuer = createAccount();

  beforeAll(async () => {
    nats = await startNats();
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    client.nc.subscribe(client.subjects.allEvents(), { callback: (_e, m) => events.push(decodeEvent(m.data)) });
    await client.nc.flush();
    // No --allowed-issuer: this host follows the lattice's list alone.
    host = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 500 });
  }, 120_000);
  afterAll(async () => {
    await host?.[Symbol.asyncDispose]();
    await client?.close();
    await nats?.stop();
  });

  it('signing bounds - after issuers are added, an unsigned actor started before is neither resized nor left running', async () => {
    const echo = new Uint8Array(await readFile(exampleActor('echo-c')));
    const { digest } = await (await openArtifacts(client.nc, client.subjects)).push(echo);
    await client.startActor(host.id, { actor: 'echo', version: '1.0.0', digest, count: 1 });
    const signed = signComponent(echo, { issuer, subject: createUser().getPublicKey(), name: 'echo', caps: [] }).bytes;
    const signedDigest = (await (await openArtifacts(client.nc, client.subjects)).push(signed)).digest;
    await client.startActor(host.id, { actor: 'echo', version: '2.0.0', digest: signedDigest, count: 1 });
    await (await openIssuers(client.nc, client.subjects)).add([issuer.getPublicKey()]);
    // The host follows the issuers document: once it refuses a new unsigned start it has seen it
    // (the KV write reaches a busy host's watch some milliseconds later).
    await waitFor(
      () =>
        client.startActor(host.id, { actor: 'probe', version: '1.0.0', digest, count: 1 }).then(
          // Not seen yet: take the probe away again and retry.
          () => client.stopActor(host.id, { actor: 'probe' }).then(() => undefined),
          (err: { code?: string }) => (err.code === 'TRELLIS_UNSIGNED' ? true : undefined),
        ),
      { what: 'the host to refuse unsigned starts', timeoutMs: 30_000 },
    );
    // A resize now: refused as unsigned, or already stopped; never more instances.
    const scaled = await client.scaleActor(host.id, { actor: 'echo', version: '1.0.0', count: 2 }).then(() => 'scaled', (err: { code?: string }) => err.code);
    expect(['TRELLIS_UNSIGNED', 'TRELLIS_NOT_FOUND']).toContain(scaled);
    const stopped = await waitFor(() => events.find((e) => e.kind === 'actor_stopped' && e.data.version === '1.0.0'), { what: 'the unsigned version stopped', timeoutMs: 30_000 });
    expect((stopped.data as { reason: string }).reason).toContain('TRELLIS_UNSIGNED');
    const running = (await client.getInventory(host.id)).actors.map((a) => a.version);
    expect(running).toEqual(['2.0.0']);
    // What the new issuer signed still resizes.
    await client.scaleActor(host.id, { actor: 'echo', version: '2.0.0', count: 2 });
    expect((await client.getInventory(host.id)).actors.find((a) => a.version === '2.0.0')?.instances).toBe(2);
  });
});
