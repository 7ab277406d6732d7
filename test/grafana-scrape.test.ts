import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { createRpcClient, type RpcClient } from '../lattice/rpc/index.ts';
import { deployExample, spawnHost, startNats, uniqueLattice, waitFor, type HostProcess, type NatsServer } from './harness/index.ts';

describe('metrics: what a real host serves on /metrics after real invocations', () => {
  let nats: NatsServer;
  let host: HostProcess;
  let client: ControlClient;
  let rpc: RpcClient;
  const lattice = uniqueLattice('mx');

  beforeAll(async () => {
    nats = await startNats();
    host = await spawnHost({ nats: nats.url, lattice, extraArgs: ['--http-port', '0'] });
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    await deployExample(client, 'hello', [host], { count: 2 });
    await deployExample(client, 'hostile-c', [host], { actor: 'hostile' });
    rpc = await createRpcClient(client.nc, { lattice });
  }, 120_000);

  afterAll(async () => {
    await rpc?.close();
    await host?.[Symbol.asyncDispose]();
    await client?.close();
    await nats?.stop();
  });

  it('metrics - invocations, errors by code, latency, cold starts, instances and saturation per actor, version and host', async () => {
    for (let i = 0; i < 5; i++) await rpc.invoke('hello', { method: 'GET', path: '/', query: '', headers: [], body: new Uint8Array() });
    await expect(rpc.invoke('hostile', { method: 'GET', path: '/trap', query: '', headers: [], body: new Uint8Array() })).rejects.toMatchObject({ code: 'TRELLIS_WASM_TRAP' });
    const url = `${host.logs.find((l) => l.msg === 'host started')!.opsUrl as string}/metrics`;
    const series = (text: string, name: string, labels: Record<string, string>) => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const hello = { actor: 'hello', version: '1.0.0', host_id: host.id, lattice };
    // Lattice calls are counted when the watchdog collects from the workers (every tick).
    const text = await waitFor(
      async () => {
        const t = await (await fetch(url)).text();
        return (series(t, 'trellis_invocations_total', { ...hello, result: 'ok' }) ?? 0) >= 5 && series(t, 'trellis_invocations_total', { actor: 'hostile', result: 'TRELLIS_WASM_TRAP' }) === 1 && t;
      },
      { timeoutMs: 10_000, what: 'counted invocations' },
    );
    expect(series(text, 'trellis_invocation_duration_seconds_count', hello)).toBeGreaterThanOrEqual(5);
    expect(series(text, 'trellis_actor_instances', hello)).toBe(2);
    expect(series(text, 'trellis_actor_pool_saturation', hello)).toBe(0);
    expect(series(text, 'trellis_actor_queued_invocations', hello)).toBe(0);
    expect(series(text, 'trellis_actor_versions', { host_id: host.id })).toBe(2);
    // Pools pre-warm (a trap's replacement instance is made before the next call): the counters
    // exist from the first scrape, at what the pools counted.
    const after = await (await fetch(url)).text();
    expect(series(after, 'trellis_cold_starts_total', hello)).toBeGreaterThanOrEqual(0);
    expect(series(after, 'trellis_workers_replaced_total', { actor: 'hostile', version: '1.0.0' })).toBe(0);
    expect(series(after, 'trellis_nats_reconnects_total', { host_id: host.id })).toBe(0);
  });
});
