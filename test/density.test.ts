/**
 * The shared worker model (issue 12): instances are Wasm instances on a fixed set of worker
 * threads, many actors per worker, one NATS connection per worker.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExampleActors } from '../actors/index.ts';
import { createRuntime, type ActorRuntime } from '../host/runtime/index.ts';
import { startHost, type Host } from '../host/index.ts';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openHttpRoutes } from '../lattice/http-routes/index.ts';
import { createRpcClient, type RpcClient } from '../lattice/rpc/index.ts';
import { bytesRequest, type ActorRequest } from '../lattice/wire/index.ts';
import { deployExample, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const sharedCache = join(tmpdir(), 'trellis-runtime-test-cache');
const path = (p: string): ActorRequest => ({ method: 'GET', path: p, query: '', headers: [], body: new Uint8Array() });

describe('shared workers in one runtime', () => {
  let paths: Awaited<ReturnType<typeof buildExampleActors>>;
  let runtime: ActorRuntime;
  beforeAll(async () => {
    paths = await buildExampleActors();
    runtime = await createRuntime({ cacheDir: sharedCache, workers: 2 });
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it('density - 1,000 warm instances of the C actor on two workers all serve; a resize keeps what it places', async () => {
    await runtime.load({ name: 'many', path: paths['echo-c'], policy: { minInstances: 1000, maxConcurrency: 1000 } });
    expect(runtime.stats('many').instances).toBe(1000);
    const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => runtime.invoke('many', bytesRequest(`m${i}`))));
    expect(answers.map((a) => text(a.body))).toEqual(Array.from({ length: 1000 }, (_, i) => `m${i}`));
    const s = runtime.stats('many');
    expect(s.coldStarts).toBe(0);
    expect(s.instances).toBe(1000);
    expect(await runtime.rescale('many', { minInstances: 10, maxConcurrency: 10 })).toBe(true);
    expect(runtime.stats('many').instances).toBe(10);
    expect(text((await runtime.invoke('many', bytesRequest('after'))).body)).toBe('after');
    await runtime.unload('many');
  });

  it('density - a runaway guest on a shared worker: other actors keep serving and its waiting calls run on the other worker', async () => {
    await runtime.load({ name: 'other', path: paths['echo-c'] });
    await runtime.load({ name: 'spin', path: paths['hostile-c'], policy: { executionTimeoutMs: 1500, maxConcurrency: 2, minInstances: 2 } });
    let loopEnded = false;
    const loop = runtime.invoke('spin', path('/loop')).then(
      () => 'answered',
      (e: { code?: string }) => ((loopEnded = true), e.code),
    );
    await waitFor(() => runtime.stats('spin').busy === 1, { what: 'the loop running' });
    // While the loop holds one worker, the other serves every actor, this one's calls included.
    for (let i = 0; i < 50; i++) expect(text((await runtime.invoke('other', bytesRequest(`o${i}`))).body)).toBe(`o${i}`);
    const oks = await Promise.all(Array.from({ length: 10 }, () => runtime.invoke('spin', path('/ok'))));
    expect(oks.map((r) => text(r.body))).toEqual(Array(10).fill('ok'));
    expect(loopEnded).toBe(false);
    expect(await loop).toBe('TRELLIS_TIME_LIMIT');
    expect(runtime.stats('spin').workersReplaced).toBeGreaterThanOrEqual(1);
    // The replacement loads both actors again: both answer, on either worker.
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => runtime.invoke(i % 2 ? 'other' : 'spin', i % 2 ? bytesRequest('x') : path('/ok'))));
    expect(after.every((r) => r.status === 200)).toBe(true);
    await waitFor(() => runtime.stats('spin').instances >= 2, { what: 'the placement back' });
  });
});

describe('shared workers serving the lattice', () => {
  let nats: NatsServer;
  let host: Host;
  let client: ControlClient;
  let rpc: RpcClient;
  const lattice = uniqueLattice('density');

  beforeAll(async () => {
    nats = await startNats();
    host = await startHost({ nats: nats.url, lattice, logLevel: 'silent', heartbeatMs: 500, workers: 2 });
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    rpc = await createRpcClient(client.nc, { lattice, caller: 'test' });
  });
  afterAll(async () => {
    await rpc?.close();
    await client?.close();
    await host?.stop();
    await nats?.stop();
  });

  /** The server's ids of the host's worker connections that subscribe to every one of `actors`. */
  const workersServing = async (actors: string[]) => {
    const connz = (await (await fetch(`${nats.monitorUrl}/connz?subs=1&limit=1000`)).json()) as { connections: { cid: number; name?: string; subscriptions_list?: string[] }[] };
    return connz.connections
      .filter((c) => c.name?.startsWith(`trellis-host-${host.name}/worker-`) && actors.every((a) => c.subscriptions_list?.includes(client.subjects.rpc(a, '1.0.0'))))
      .map((c) => c.cid)
      .sort();
  };

  it('density - one NATS connection per worker, whatever the instance and actor counts', async () => {
    await deployExample(client, 'echo-c', [host.id], { actor: 'a1', count: 20 });
    await deployExample(client, 'echo-c', [host.id], { actor: 'a2', count: 5 });
    await deployExample(client, 'hello', [host.id], { actor: 'a3', count: 3 });
    const connz = (await (await fetch(`${nats.monitorUrl}/connz?subs=1&limit=1000`)).json()) as { connections: { name?: string; subscriptions_list?: string[] }[] };
    const workers = connz.connections.filter((c) => c.name?.startsWith(`trellis-host-${host.name}/`));
    expect(workers.map((c) => c.name).sort()).toEqual([`trellis-host-${host.name}/worker-0`, `trellis-host-${host.name}/worker-1`]);
    for (const w of workers) for (const a of ['a1', 'a2', 'a3']) expect(w.subscriptions_list).toContain(client.subjects.rpc(a, '1.0.0'));
    for (const a of ['a1', 'a2', 'a3']) expect((await rpc.invoke(a, bytesRequest('x'))).response.status).toBe(200);
  });

  it('density - a call does not wait behind a long one while the other worker is free', async () => {
    await deployExample(client, 'hostile-c', [host.id], { actor: 'mixed', count: 2, policy: { executionTimeoutMs: 1500 } });
    await deployExample(client, 'echo-c', [host.id], { actor: 'quick', count: 1 });
    const before = await waitFor(async () => ((await workersServing(['mixed', 'quick'])).length === 2 ? workersServing(['mixed', 'quick']) : undefined), { what: 'both workers in the queue groups' });
    // The first long call teaches the host that this actor's calls can be long (the watchdog ends it).
    await expect(rpc.invoke('mixed', path('/loop'), { deadlineMs: 10_000 })).rejects.toMatchObject({ code: 'TRELLIS_TIME_LIMIT' });
    // Its worker was replaced; the replacement takes calls once it has loaded every actor again
    // (the server may list the terminated worker's connection a moment longer).
    await waitFor(
      async () => {
        const now = await workersServing(['mixed', 'quick']);
        return now.length === 2 && now.filter((cid) => before.includes(cid)).length === 1;
      },
      { what: 'the replacement worker in the queue groups' },
    );
    const loop = rpc.invoke('mixed', path('/loop'), { deadlineMs: 10_000 }).catch((e: { code?: string }) => e.code);
    // The inventory counts the busy instance (placed instances stay the count).
    await waitFor(async () => (await client.getInventory(host.id)).actors.find((a) => a.name === 'mixed')?.busy === 1, { what: 'the loop busy' });
    expect((await client.getInventory(host.id)).actors.find((a) => a.name === 'mixed')).toMatchObject({ instances: 2, busy: 1 });
    // Its worker left the queue groups before the guest ran: every call goes to the free worker
    // and is answered on its first attempt (a call stuck behind the loop would need a second).
    for (let i = 0; i < 40; i++) {
      const r = await rpc.invoke(i % 4 === 0 ? 'mixed' : 'quick', i % 4 === 0 ? path('/ok') : bytesRequest(`q${i}`));
      expect(r.attempts, `call ${i}`).toBe(1);
    }
    expect(await loop).toBe('TRELLIS_TIME_LIMIT');
    expect((await rpc.invoke('quick', bytesRequest('after'))).attempts).toBe(1);
  });
});

describe('a burst on a cold JavaScript actor', () => {
  let nats: NatsServer;
  const lattice = uniqueLattice('burst');
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('density - 200 concurrent HTTP requests to a JS actor with one warm instance all succeed within the gateway deadline of 3 s', async () => {
    await using host = await spawnHost({ nats: nats.url, lattice, extraArgs: ['--workers', '2'] });
    await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    await using gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0', '--deadline-ms', '3000'], 'gateway ready');
    const base = gateway.ready.url as string;
    await deployExample(client, 'hello', [host.id], { actor: 'greeter', count: 1 });
    await (await openHttpRoutes(client.nc, client.subjects)).add('/greet', 'greeter');
    await waitFor(async () => (await fetch(`${base}/greet?name=x`)).status === 200, { timeoutMs: 20_000, what: 'gateway route' });
    const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => fetch(`${base}/greet?name=n${i}`)));
    const bodies = await Promise.all(responses.map((r) => r.text()));
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(bodies).toEqual(Array.from({ length: 200 }, (_, i) => `hello, n${i}`));
  });
});
