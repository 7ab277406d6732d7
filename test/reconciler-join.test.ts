import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectControl } from '../lattice/control/index.ts';
import { openArtifacts } from '../lattice/state/index.ts';
import { decodeEvent, type LatticeEvent } from '../lattice/wire/index.ts';
import { actorSpec, httpLoad, openAppDocs, placedOf, putRevision, total } from './harness/apps.ts';
import { exampleActor, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor } from './harness/index.ts';

describe('reconciler when a host joins', () => {
  it('reconciler - a joining host gets its share by start before stop, under HTTP load with zero non-2xx', async () => {
    await using nats = await startNats();
    const lattice = uniqueLattice('join');
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    await using first = await spawnHost({ nats: nats.url, lattice, env, name: 'first' });
    await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    const events: LatticeEvent[] = [];
    client.nc.subscribe(client.subjects.allEvents(), { callback: (_e, m) => events.push(decodeEvent(m.data)) });
    // Port 0: the gateway binds a free port itself and says which in its ready line.
    await using gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0'], 'gateway ready');
    const base = gateway.ready.url as string;
    const digest = (await (await openArtifacts(client.nc, client.subjects)).push(new Uint8Array(await readFile(exampleActor('echo-c'))))).digest;
    const docs = await openAppDocs(client.nc, client.subjects);
    await putRevision(docs, { name: 'shop', actors: [actorSpec('api', '1.0.0', digest, 4, undefined, { routes: [{ prefix: '/api' }] })], providers: [] });
    await waitFor(async () => (await docs.statuses.get('shop'))?.value.phase === 'Deployed', { timeoutMs: 60_000, what: 'Deployed on one host' });
    await waitFor(async () => (await fetch(`${base}/api/x`)).status === 200, { timeoutMs: 20_000, what: 'served' });

    const load = httpLoad(`${base}/api/x`, 8);
    await using second = await spawnHost({ nats: nats.url, lattice, env, name: 'second' });
    await waitFor(async () => {
      const rows = await placedOf(client, 'shop');
      return total(rows, (p) => p.hostId === second.id) === 2 && total(rows, (p) => p.hostId === first.id) === 2;
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'two on each host' });
    await new Promise((r) => setTimeout(r, 1000));
    await load.stop();
    console.log(`join rebalance: ${load.ok} requests ok, ${load.bad()} not 2xx`);
    expect(load.failures).toEqual([]);
    expect(load.bad()).toBe(0);
    // Start before stop: the new host's instances were placed before the first host gave any up.
    const placed = events.filter((e) => e.kind === 'actor_placed' && e.data.app === 'shop');
    const grew = placed.findIndex((e) => e.kind === 'actor_placed' && e.data.hostId === second.id && e.data.instances > e.data.previous);
    const shrank = placed.findIndex((e) => e.kind === 'actor_placed' && e.data.hostId === first.id && e.data.instances < e.data.previous);
    expect(grew).toBeGreaterThanOrEqual(0);
    expect(shrank).toBeGreaterThan(grew);
    expect(total(await placedOf(client, 'shop'))).toBe(4);
  }, 180_000);
});
