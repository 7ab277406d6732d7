import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectControl } from '../lattice/control/index.ts';
import { openArtifacts } from '../lattice/state/index.ts';
import { actorSpec, openAppDocs, placedOf, putRevision, total } from './harness/apps.ts';
import { exampleActor, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor, type HostProcess } from './harness/index.ts';

describe('reconciler across a whole-lattice restart', () => {
  it('reconciler - the lattice restarts from its JetStream store and returns to the desired state with no operator action', async () => {
    const storeDir = await mkdtemp(path.join(os.tmpdir(), 'trellis-js-'));
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    const lattice = uniqueLattice('rst');
    const spread = [
      { name: 'aws', requirements: { cloud: 'aws' }, weight: 1 },
      { name: 'gcp', requirements: { cloud: 'gcp' }, weight: 1 },
    ];
    const startLattice = async () => {
      const nats = await startNats({ storeDir });
      const hosts: HostProcess[] = await Promise.all(['aws', 'aws', 'gcp'].map((cloud) => spawnHost({ nats: nats.url, lattice, env, labels: { cloud } })));
      // Port 0: the gateway binds a free port itself and says which in its ready line.
      const gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0'], 'gateway ready');
      const client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
      return { nats, hosts, gateway, client, base: gateway.ready.url as string };
    };
    const exact = async (client: Awaited<ReturnType<typeof startLattice>>['client']) => {
      const rows = await placedOf(client, 'shop');
      return total(rows, (p) => p.labels.cloud === 'aws') === 2 && total(rows, (p) => p.labels.cloud === 'gcp') === 2 && rows.every((r) => r.actor === 'api');
    };

    // 1. Deploy.
    let l = await startLattice();
    const digest = (await (await openArtifacts(l.client.nc, l.client.subjects)).push(new Uint8Array(await readFile(exampleActor('echo-c'))))).digest;
    const docs = await openAppDocs(l.client.nc, l.client.subjects);
    await putRevision(docs, { name: 'shop', actors: [actorSpec('api', '1.0.0', digest, 4, spread, { routes: [{ prefix: '/api' }] })], providers: [] });
    await waitFor(() => exact(l.client), { timeoutMs: 60_000, what: 'deployed before the restart' });
    await waitFor(async () => (await fetch(`${l.base}/api/x`)).status === 200, { timeoutMs: 20_000, what: 'served before the restart' });

    // 2. Everything goes: hosts killed, the gateway and nats-server stopped.
    for (const h of l.hosts) h.kill('SIGKILL');
    await Promise.all(l.hosts.map((h) => h.exited));
    await l.gateway[Symbol.asyncDispose]();
    await l.client.close();
    await l.nats.stop();

    // 3. Everything starts again, from the same store, with new host processes; nobody applies anything.
    const restartedAt = Date.now();
    l = await startLattice();
    try {
      await waitFor(() => exact(l.client), { timeoutMs: 60_000, intervalMs: 250, what: 'desired state after the restart' });
      console.log(`lattice restart: desired state again ${Date.now() - restartedAt} ms after nats-server and the hosts started again`);
      await waitFor(async () => (await fetch(`${l.base}/api/x`)).status === 200, { timeoutMs: 20_000, what: 'served after the restart' });
      const after = await openAppDocs(l.client.nc, l.client.subjects);
      const status = await waitFor(async () => {
        const s = (await after.statuses.get('shop'))?.value;
        return s && Date.parse(s.observedAt) > restartedAt && s.phase === 'Deployed' ? s : undefined;
      }, { timeoutMs: 20_000, what: 'a fresh Deployed status' });
      expect(status.actors[0]).toMatchObject({ name: 'api', desired: 4, running: 4 });
      expect(new Set(l.hosts.map((h) => h.id)).size).toBe(3);
    } finally {
      await l.gateway[Symbol.asyncDispose]();
      await Promise.all(l.hosts.map((h) => h[Symbol.asyncDispose]()));
      await l.client.close();
      await l.nats.stop();
    }
  }, 240_000);
});
