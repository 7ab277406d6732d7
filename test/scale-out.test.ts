/**
 * Scale-out on one box (issue 12), the small version the suite runs: several host processes in
 * one lattice, 20 actors each. The bench runs 50 hosts (test/bench/scale-out.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { bytesRequest } from '../lattice/wire/index.ts';
import { startNats, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';
import { startScaleOut, type ScaleOut } from './harness/scale-out.ts';

const HOSTS = 6;
const ACTORS = 20;

describe('scale-out: many hosts on one box', () => {
  let nats: NatsServer;
  let client: ControlClient;
  let lattice: ScaleOut;
  const name = uniqueLattice('scale');

  beforeAll(async () => {
    nats = await startNats();
    client = await connectControl({ nats: nats.url, lattice: name, timeoutMs: 120_000 });
    lattice = await startScaleOut(client, nats.url, name, HOSTS, ACTORS, 3);
  }, 300_000);
  afterAll(async () => {
    await lattice?.[Symbol.asyncDispose]();
    await client?.close();
    await nats?.stop();
  });

  it(`scale-out - ${HOSTS} hosts x ${ACTORS} actors: get hosts lists them all, every version answers, each host holds 2 connections`, async () => {
    const hosts = await client.pingHosts();
    expect(hosts.map((h) => h.name).sort()).toEqual(lattice.hosts.map((h) => h.name).sort());
    for (const h of hosts) expect(h.actors).toHaveLength(ACTORS);
    const rpc = await createRpcClient(client.nc, { lattice: name, caller: 'test' });
    try {
      const all = lattice.actors.flat();
      await waitFor(() => all.every((a) => rpc.view.liveVersions(a).length > 0), { timeoutMs: 30_000, what: 'every version live' });
      const answers = await Promise.all(all.map((a) => rpc.invoke(a, bytesRequest(a)).then((r) => new TextDecoder().decode(r.response.body))));
      expect(answers).toEqual(all);
    } finally {
      await rpc.close();
    }
    // One worker each: the host's own connection and its worker's, whatever it runs.
    const connz = (await (await fetch(`${nats.monitorUrl}/connz?limit=1000`)).json()) as { connections: { name?: string }[] };
    for (const h of lattice.hosts) {
      expect(connz.connections.filter((c) => c.name?.startsWith('trellis-host-') && (c.name.endsWith(h.name) || c.name.includes(`${h.name}/`))).length, h.name).toBe(2);
    }
  }, 120_000);
});
