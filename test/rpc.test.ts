import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, createInbox, headers as natsHeaders } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type Host } from '../host/index.ts';
import { connectControl, createControlClient, type ControlClient } from '../lattice/control/index.ts';
import { createRpcClient, type RpcClient } from '../lattice/rpc/index.ts';
import { ATTEMPT_TAKE_MARGIN_MS, bytesRequest, decode, decodeEvent, encode, RpcHeaders, type InvokeReply, type LatticeEvent } from '../lattice/wire/index.ts';
import { deployExample, spawnHost, startNats, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';

/** One sample of the host's Prometheus metrics, or 0 when absent. */
async function metric(host: Host, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${host.opsUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** Run `total` invocations with `concurrency` in flight; returns the versions that answered. */
async function load(rpc: RpcClient, actor: string, total: number, concurrency: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) {
      const r = await rpc.invoke(actor, bytesRequest('x'));
      counts.set(r.version, (counts.get(r.version) ?? 0) + 1);
    }
  }));
  return counts;
}

describe('lattice rpc on one nats-server', () => {
  let nats: NatsServer;
  let host: Host;
  let client: ControlClient;
  let rpc: RpcClient;
  const lattice = uniqueLattice('rpc');

  beforeAll(async () => {
    nats = await startNats({ maxPayload: 256 * 1024 });
    host = await startHost({ nats: nats.url, lattice, logLevel: 'silent', heartbeatMs: 500, httpPort: 0, workers: 2 });
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    rpc = await createRpcClient(client.nc, { lattice, caller: 'test' });
  });
  afterAll(async () => {
    await rpc?.close();
    await client?.close();
    await host?.stop();
    await nats?.stop();
  });

  it('rpc - invoke returns the actor response with metadata: version, answering host, attempts', async () => {
    await deployExample(client, 'echo-c', [host.id], { actor: 'echo', version: '1.0.0' });
    const result = await rpc.invoke('echo', bytesRequest('hello lattice'));
    expect(new TextDecoder().decode(result.response.body)).toBe('hello lattice');
    expect(result).toMatchObject({ actor: 'echo', version: '1.0.0', hostId: host.id, attempts: 1 });
    expect(result.invocationId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('rpc - without weights traffic goes to the highest live version; weights split traffic within 2 points', async () => {
    await deployExample(client, 'echo-c', [host.id], { actor: 'split', version: '1.0.0', count: 2 });
    await deployExample(client, 'echo-c', [host.id], { actor: 'split', version: '1.1.0', count: 2 });
    await waitFor(() => rpc.view.liveVersions('split').length === 2, { what: 'both versions live' });
    expect((await load(rpc, 'split', 50, 4)).get('1.1.0')).toBe(50);

    const setAt = Date.now();
    // A different client sets the weights, as an operator's CLI would.
    await using other = await createRpcClient(client.nc, { lattice });
    await other.weights.set('split', { '1.0.0': 90, '1.1.0': 10 });
    await waitFor(() => rpc.routeStatus('split').weights?.['1.0.0'] === 90, { timeoutMs: 1000, intervalMs: 10, what: 'weights seen' });
    expect(Date.now() - setAt).toBeLessThan(1000);

    const total = 10_000;
    const counts = await load(rpc, 'split', total, 64);
    const canaryShare = ((counts.get('1.1.0') ?? 0) / total) * 100;
    console.log(`weighted split over ${total}: 1.0.0=${counts.get('1.0.0')} 1.1.0=${counts.get('1.1.0')} (canary ${canaryShare.toFixed(2)}%)`);
    expect(Math.abs(canaryShare - 10)).toBeLessThanOrEqual(2);
  });

  it('rpc - a weighted version with no live instance gets no traffic and route status says so', async () => {
    await deployExample(client, 'echo-c', [host.id], { actor: 'shift', version: '1.0.0' });
    await deployExample(client, 'echo-c', [host.id], { actor: 'shift', version: '2.0.0' });
    await rpc.weights.set('shift', { '1.0.0': 50, '2.0.0': 50 });
    await waitFor(() => rpc.routeStatus('shift').weights !== undefined && rpc.view.liveVersions('shift').length === 2, { what: 'route and versions' });
    await client.stopActor(host.id, { actor: 'shift', version: '2.0.0' });
    await waitFor(() => !rpc.view.liveVersions('shift').includes('2.0.0'), { what: '2.0.0 gone from view' });
    const counts = await load(rpc, 'shift', 200, 8);
    expect(counts.get('1.0.0')).toBe(200);
    expect(rpc.routeStatus('shift').effective).toEqual({ '1.0.0': 100, '2.0.0': 0 });
    // All weight on the stopped version: traffic falls to the highest live one, and the status
    // shows where it really goes.
    await rpc.weights.set('shift', { '2.0.0': 100 });
    await waitFor(() => rpc.routeStatus('shift').weights?.['2.0.0'] === 100, { what: 'new weights seen' });
    expect((await load(rpc, 'shift', 50, 4)).get('1.0.0')).toBe(50);
    expect(rpc.routeStatus('shift').effective).toEqual({ '1.0.0': 100, '2.0.0': 0 });
  });

  it('rpc - scaling an actor under load fails no call, and the same worker connections serve it throughout', async () => {
    await deployExample(client, 'echo-c', [host.id], { actor: 'elastic', version: '1.0.0', count: 1 });
    let running = true;
    let ok = 0;
    const failures: unknown[] = [];
    const callers = Array.from({ length: 8 }, async () => {
      while (running && failures.length < 100) {
        try {
          await rpc.invoke('elastic', bytesRequest('x'));
          ok += 1;
        } catch (err) {
          failures.push(err);
        }
      }
    });
    // Instances are Wasm instances inside the host's shared workers, which hold one NATS
    // connection each: a scale changes neither the connections nor their queue groups.
    const workerConnections = async () => {
      const connz = (await (await fetch(`${nats.monitorUrl}/connz?subs=1&limit=1000`)).json()) as { connections: { name?: string; subscriptions_list?: string[] }[] };
      return connz.connections
        .filter((c) => c.name?.startsWith(`trellis-host-${host.name}/worker-`) && c.subscriptions_list?.includes(client.subjects.rpc('elastic', '1.0.0')))
        .map((c) => c.name!)
        .sort();
    };
    const before = await waitFor(async () => ((await workerConnections()).length === 2 ? workerConnections() : undefined), { what: 'both workers in the queue group' });
    try {
      for (const count of [4, 1, 3]) {
        await new Promise((r) => setTimeout(r, 200));
        await client.scaleActor(host.id, { actor: 'elastic', version: '1.0.0', count });
        expect((await client.getInventory(host.id)).actors.find((a) => a.name === 'elastic')?.instances).toBe(count);
        expect(await workerConnections()).toEqual(before);
      }
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      // Also when an expectation fails: callers left running would spin on a stopped host.
      running = false;
      await Promise.all(callers);
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(100);
  });

  it('rpc - a call past its time limit is answered by the host with TRELLIS_TIME_LIMIT, sent once, and the version keeps serving', async () => {
    // The limit is three times the caller's first attempt time-out (500 ms): only the host's
    // progress replies keep the caller from sending the call again meanwhile.
    await deployExample(client, 'hostile-c', [host.id], { actor: 'spinner', policy: { executionTimeoutMs: 1500 } });
    const ok = () => rpc.invoke('spinner', { ...bytesRequest(''), path: '/ok' });
    // A fast call first: the caller's attempt time-out adapts to it and drops to its floor.
    expect((await ok()).attempts).toBe(1);
    // A plain subscriber sees every attempt sent to the version's subject.
    const sent: string[] = [];
    const spy = client.nc.subscribe(client.subjects.rpc('spinner', '1.0.0'), {
      callback: (_e, m) => sent.push(m.headers?.get(RpcHeaders.invocationId) ?? ''),
    });
    await client.nc.flush();
    await expect(rpc.invoke('spinner', { ...bytesRequest(''), path: '/loop' }, { deadlineMs: 10_000 })).rejects.toMatchObject({ code: 'TRELLIS_TIME_LIMIT' });
    spy.unsubscribe();
    expect(sent).toHaveLength(1);
    // The terminated worker was replaced and answers again.
    expect(new TextDecoder().decode((await ok()).response.body)).toBe('ok');
    // Workers report what they served in batches: the host's metrics count both calls.
    const labels = { actor: 'spinner', version: '1.0.0' };
    await waitFor(async () => (await metric(host, 'trellis_invocations_total', { ...labels, result: 'ok' })) === 2, { what: 'ok counted' });
    expect(await metric(host, 'trellis_invocations_total', { ...labels, result: 'TRELLIS_TIME_LIMIT' })).toBe(1);
    expect(await metric(host, 'trellis_invocation_duration_seconds_count', labels)).toBe(3);
    // A caller's deadline shorter than the limit ends the call there, on the host as well, and
    // the host's progress replies do not keep the caller waiting past it.
    const started = performance.now();
    await expect(rpc.invoke('spinner', { ...bytesRequest(''), path: '/loop' }, { deadlineMs: 600 })).rejects.toMatchObject({ code: 'TRELLIS_DEADLINE_EXCEEDED' });
    expect(performance.now() - started).toBeLessThan(1500);
    await waitFor(async () => (await metric(host, 'trellis_invocations_total', { ...labels, result: 'TRELLIS_DEADLINE_EXCEEDED' })) === 1, { what: 'deadline counted' });
    expect(await metric(host, 'trellis_invocations_total', { ...labels, result: 'TRELLIS_TIME_LIMIT' })).toBe(1);
  });

  it('rpc - a call its caller has given up on is dropped, not run; one about to expire gets a progress reply first', async () => {
    await deployExample(client, 'echo-c', [host.id], { actor: 'patient', version: '1.0.0' });
    const subject = client.subjects.rpc('patient', '1.0.0');
    const body = encode(bytesRequest('x'));
    type Got = { kind: 'taken' | 'progress' | 'reply'; reply?: InvokeReply };
    /** Send one call with the given attempt expiry; collect what comes back within 400 ms. */
    const send = async (attemptExpires: number, deadline = Date.now() + 10_000) => {
      const inbox = createInbox();
      const got: Got[] = [];
      const sub = client.nc.subscribe(inbox, {
        callback: (_e, m) =>
          got.push(m.data.length === 0 ? { kind: m.headers?.get(RpcHeaders.taken) === '1' && m.headers?.get(RpcHeaders.progress) === '1' ? 'taken' : 'progress' } : { kind: 'reply', reply: decode<InvokeReply>(m.data) }),
      });
      const h = natsHeaders();
      h.set(RpcHeaders.deadline, String(deadline));
      h.set(RpcHeaders.attemptExpires, String(attemptExpires));
      client.nc.publish(subject, body, { reply: inbox, headers: h });
      await new Promise((r) => setTimeout(r, 400));
      sub.unsubscribe();
      return got;
    };
    // Expired: the caller has sent it again already, so the host must not run this copy.
    expect(await send(Date.now() - 1000)).toEqual([]);
    // Inside the take margin: its caller may give up before it hears the call was taken.
    expect(await send(Date.now() + ATTEMPT_TAKE_MARGIN_MS / 2)).toEqual([]);
    // Time enough: taken first (the caller waits on), then the answer.
    const taken = await send(Date.now() + 5000);
    expect(taken.map((m) => m.kind)).toEqual(['taken', 'reply']);
    expect(taken[1]!.reply).toMatchObject({ ok: true, host: host.id, version: '1.0.0' });
    // The caller's last attempt (it ends at the deadline): it sends nothing again, so no
    // acknowledgement is needed, just the answer.
    const last = Date.now() + 5000;
    expect((await send(last, last)).map((m) => m.kind)).toEqual(['reply']);
    const labels = { actor: 'patient', version: '1.0.0' };
    await waitFor(async () => (await metric(host, 'trellis_invocations_total', { ...labels, result: 'ok' })) === 2, { what: 'answered calls counted' });
    await waitFor(async () => (await metric(host, 'trellis_invocations_total', { ...labels, result: 'TRELLIS_TIMEOUT' })) === 2, { what: 'dropped calls counted' });
  });

  it('rpc - bad input gets stable codes and disturbs nothing', async () => {
    await deployExample(client, 'echo-c', [host.id], { actor: 'steady', version: '1.0.0' });
    await expect(rpc.invoke('no-such-actor', bytesRequest('x'))).rejects.toMatchObject({ code: 'TRELLIS_NO_RESPONDERS' });
    // A pinned version that runs nowhere (issue 11: 404, not 503).
    await expect(rpc.invoke('steady', bytesRequest('x'), { version: '9.9.9' })).rejects.toMatchObject({ code: 'TRELLIS_UNKNOWN_VERSION' });
    await expect(rpc.invoke('bad.name', bytesRequest('x'))).rejects.toMatchObject({ code: 'TRELLIS_BAD_REQUEST' });
    const malformed: Record<string, number>[] = [{ '1.0.0': 90 }, { '1.0.0': 110, '1.1.0': -10 }, { latest: 100 }, { '1.0.0': 50.5, '1.1.0': 49.5 }];
    for (const weights of malformed) {
      await expect(rpc.weights.set('steady', weights)).rejects.toMatchObject({ code: 'TRELLIS_BAD_WEIGHTS' });
    }
    await expect(rpc.weights.set('steady', { '1.0.0': 50, '7.0.0': 50 }, ['1.0.0'])).rejects.toMatchObject({ code: 'TRELLIS_BAD_WEIGHTS' });
    // Over the server's max_payload (256 KiB here): refused by the client before sending.
    await expect(rpc.invoke('steady', bytesRequest(new Uint8Array(300 * 1024)))).rejects.toMatchObject({ code: 'TRELLIS_PAYLOAD_TOO_LARGE' });
    // A digest nobody pushed: the start fails with its code and an actor_start_failed event.
    const events: LatticeEvent[] = [];
    client.nc.subscribe(client.subjects.event('actor_start_failed'), { callback: (_e, m) => events.push(decodeEvent(m.data)) });
    const missing = `sha256:${'0'.repeat(64)}`;
    await expect(client.startActor(host.id, { actor: 'ghost', version: '1.0.0', digest: missing })).rejects.toMatchObject({ code: 'TRELLIS_DIGEST_NOT_FOUND' });
    const failed = await waitFor(() => events.find((e) => e.kind === 'actor_start_failed'), { what: 'actor_start_failed' });
    expect(failed.data).toMatchObject({ actor: 'ghost', error: { code: 'TRELLIS_DIGEST_NOT_FOUND' } });
    // And the lattice still works.
    expect(new TextDecoder().decode((await rpc.invoke('steady', bytesRequest('still here'))).response.body)).toBe('still here');
  });
});

describe('lattice rpc across a nats-server restart', () => {
  it('rpc - the instances reconnect by themselves and serve again after nats-server restarts', async () => {
    const lattice = uniqueLattice('restart');
    const storeDir = await mkdtemp(path.join(os.tmpdir(), 'trellis-restart-'));
    let nats = await startNats({ storeDir });
    const port = Number(new URL(nats.url).port);
    await using host = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 500, extraArgs: ['--workers', '2'] });
    // The caller reconnects forever too, as a long-running participant does.
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    try {
      const client = createControlClient(nc, { lattice, timeoutMs: 60_000 });
      await deployExample(client, 'echo-c', [host.id], { actor: 'survivor', version: '1.0.0', count: 2 });
      const rpc = await createRpcClient(nc, { lattice, caller: 'test' });
      try {
        await waitFor(() => rpc.view.liveVersions('survivor').length > 0, { what: 'survivor live' });
        expect(new TextDecoder().decode((await rpc.invoke('survivor', bytesRequest('before'))).response.body)).toBe('before');
        await nats.stop();
        nats = await startNats({ storeDir, port });
        // Both worker connections rejoin the queue group: calls are answered again.
        await waitFor(
          async () => {
            try {
              return new TextDecoder().decode((await rpc.invoke('survivor', bytesRequest('after'), { deadlineMs: 1000 })).response.body) === 'after';
            } catch {
              return false;
            }
          },
          { timeoutMs: 30_000, what: 'answers after the restart' },
        );
        // One worker back is enough to answer; the other reconnects on its own (jittered) schedule.
        const workers = async () => {
          const connz = (await (await fetch(`${nats.monitorUrl}/connz?subs=1&limit=100`)).json()) as { connections: { name?: string; subscriptions_list?: string[] }[] };
          return connz.connections.filter((c) => c.name?.startsWith(`trellis-host-${host.name}/worker-`) && c.subscriptions_list?.includes(client.subjects.rpc('survivor', '1.0.0'))).length;
        };
        await waitFor(async () => (await workers()) === 2, { timeoutMs: 30_000, what: 'both worker connections back' });
        expect(await workers()).toBe(2);
      } finally {
        await rpc.close();
      }
    } finally {
      await nc.close();
      await nats.stop();
    }
  }, 90_000);
});
