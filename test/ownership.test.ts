import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type Host } from '../host/index.ts';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openArtifacts } from '../lattice/state/index.ts';
import { decodeBeat, decodeEvent, type HostBeat, type LatticeEvent } from '../lattice/wire/index.ts';
import { exampleActor, startNats, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';

describe('host ownership, provider references and liveness', () => {
  let nats: NatsServer;
  let host: Host;
  let client: ControlClient;
  let digest: string;
  const lattice = uniqueLattice('own');
  const events: LatticeEvent[] = [];
  const beats: HostBeat[] = [];
  const shop = { app: 'shop', revision: 1 };

  beforeAll(async () => {
    nats = await startNats();
    host = await startHost({ nats: nats.url, lattice, logLevel: 'silent', controller: false });
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    client.nc.subscribe(client.subjects.allEvents(), { callback: (_e, m) => events.push(decodeEvent(m.data)) });
    client.nc.subscribe(client.subjects.allBeats(), { callback: (_e, m) => beats.push(decodeBeat(m.data)) });
    digest = (await (await openArtifacts(client.nc, client.subjects)).push(new Uint8Array(await readFile(exampleActor('echo-c'))))).digest;
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await host?.stop();
    await nats?.stop();
  });

  const code = (p: Promise<unknown>) => p.then(() => 'ok', (err: { code?: string; message: string }) => `${err.code}: ${err.message}`);

  it('ownership - an app owns what it placed: other apps and hand commands may not take it over, a newer revision does', async () => {
    const started = await client.startActor(host.id, { actor: 'api', version: '1.0.0', digest, count: 1, owner: shop });
    expect(started.owner).toEqual(shop);
    expect((await client.getInventory(host.id)).actors.find((a) => a.name === 'api')?.owner).toEqual(shop);

    expect(await code(client.startActor(host.id, { actor: 'api', version: '1.0.0', digest, count: 2, owner: { app: 'cart', revision: 1 } }))).toMatch(/^TRELLIS_CONFLICT: .*owned by app shop/);
    expect(await code(client.scaleActor(host.id, { actor: 'api', version: '1.0.0', count: 3 }))).toMatch(/^TRELLIS_CONFLICT: .*owned by app shop/);
    expect(await code(client.stopActor(host.id, { actor: 'api', owner: { app: 'cart', revision: 1 } }))).toMatch(/^TRELLIS_CONFLICT: .*not owned by app cart/);

    // A new revision of the same app takes the instances over; an older one is refused.
    const scaled = await client.scaleActor(host.id, { actor: 'api', version: '1.0.0', count: 2, owner: { app: 'shop', revision: 2 } });
    expect(scaled).toMatchObject({ instances: 2, owner: { app: 'shop', revision: 2 } });
    expect(await code(client.scaleActor(host.id, { actor: 'api', version: '1.0.0', count: 1, owner: shop }))).toMatch(/^TRELLIS_CONFLICT: .*newer than 1/);

    // Hand-started instances are not an app's to take over.
    await client.startActor(host.id, { actor: 'tool', version: '1.0.0', digest, count: 1 });
    expect(await code(client.startActor(host.id, { actor: 'tool', version: '1.0.0', digest, count: 1, owner: shop }))).toMatch(/^TRELLIS_CONFLICT: .*started by hand/);
    expect((await client.getInventory(host.id)).actors.find((a) => a.name === 'tool')?.owner).toBeUndefined();

    // An app's stop stops only what it owns.
    await client.startActor(host.id, { actor: 'api', version: '2.0.0', digest, count: 1 });
    expect(await client.stopActor(host.id, { actor: 'api', owner: { app: 'shop', revision: 2 } })).toEqual({ stopped: ['api@1.0.0'] });
    expect((await client.getInventory(host.id)).actors.map((a) => `${a.name}@${a.version}`).sort()).toEqual(['api@2.0.0', 'tool@1.0.0']);
    await client.stopActor(host.id, { actor: 'api' });
    await client.stopActor(host.id, { actor: 'tool' });
  });

  it('ownership - concurrent starts of one version run one after the other: the second resizes, or is refused for another app', async () => {
    const [first, second, other] = await Promise.allSettled([
      client.startActor(host.id, { actor: 'race', version: '1.0.0', digest, count: 1, owner: shop }),
      client.startActor(host.id, { actor: 'race', version: '1.0.0', digest, count: 2, owner: shop }),
      client.startActor(host.id, { actor: 'race', version: '1.0.0', digest, count: 1, owner: { app: 'cart', revision: 1 } }),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({ status: 'fulfilled', value: { instances: 2, owner: shop } });
    expect(other).toMatchObject({ status: 'rejected', reason: { code: 'TRELLIS_CONFLICT' } });
    expect((await client.getInventory(host.id)).actors.filter((a) => a.name === 'race')).toMatchObject([{ instances: 2, owner: shop }]);
    await client.stopActor(host.id, { actor: 'race' });
  });

  it('providers - references per app plus the hand start; the process stops with the last one', async () => {
    const provider = 'keyvalue-nats';
    const a = await client.startProvider(host.id, { provider, owner: 'shop' });
    const pid = a.pid;
    expect(a).toMatchObject({ owners: ['shop'], manual: false });
    expect(await client.startProvider(host.id, { provider, owner: 'cart' })).toMatchObject({ owners: ['cart', 'shop'], pid });
    expect(await client.startProvider(host.id, { provider })).toMatchObject({ owners: ['cart', 'shop'], manual: true, pid });

    expect(await client.stopProvider(host.id, { provider, owner: 'shop' })).toEqual({ stopped: provider, running: true, owners: ['cart'] });
    // A hand stop drops the hand reference only: cart still needs it, so it keeps running.
    expect(await client.stopProvider(host.id, { provider })).toEqual({ stopped: provider, running: true, owners: ['cart'] });
    const inv = (await client.getInventory(host.id)).providers.find((p) => p.name === provider);
    expect(inv).toMatchObject({ owners: ['cart'], manual: false, pid });
    expect(() => process.kill(pid!, 0)).not.toThrow();

    expect(await client.stopProvider(host.id, { provider, owner: 'cart' })).toEqual({ stopped: provider, running: false });
    expect((await client.getInventory(host.id)).providers).toEqual([]);
    await waitFor(() => {
      try {
        process.kill(pid!, 0);
        return false;
      } catch {
        return true;
      }
    }, { what: 'provider process gone' });
  });

  it('liveness - beats every second carry the inventory sequence; a change sends the inventory at once', async () => {
    await waitFor(() => beats.filter((b) => b.id === host.id).length >= 2, { what: 'two beats' });
    const before = beats.filter((b) => b.id === host.id).at(-1)!;
    expect(before.periodMs).toBe(1000);
    const seen = events.length;
    await client.startActor(host.id, { actor: 'beat', version: '1.0.0', digest, count: 1 });
    const inv = await waitFor(() => events.slice(seen).find((e) => e.kind === 'host_heartbeat' && e.data.actors.some((x) => x.name === 'beat')), { what: 'inventory after the change' });
    if (inv.kind !== 'host_heartbeat') throw new Error('unreachable');
    expect(inv.data.seq).toBeGreaterThan(before.seq);
    await waitFor(() => beats.some((b) => b.id === host.id && b.seq === inv.data.seq), { what: 'a beat with the new sequence' });
    await client.stopActor(host.id, { actor: 'beat' });
  });
});
