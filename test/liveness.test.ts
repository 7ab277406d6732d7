import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectControl } from '../lattice/control/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { openArtifacts } from '../lattice/state/index.ts';
import { actorSpec, openAppDocs, placedOf, putRevision, total } from './harness/apps.ts';
import { exampleActor, spawnHost, startNats, uniqueLattice, waitFor } from './harness/index.ts';

describe('liveness by beats', () => {
  it('liveness - a frozen host (its connection open, its beats gone) leaves the RPC view and its replica is placed elsewhere after 3 missed beats', async () => {
    await using nats = await startNats();
    const lattice = uniqueLattice('live');
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    await using steady = await spawnHost({ nats: nats.url, lattice, env, name: 'steady' });
    await using frozen = await spawnHost({ nats: nats.url, lattice, env, name: 'frozen', extraArgs: ['--no-controller'] });
    await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    const digest = (await (await openArtifacts(client.nc, client.subjects)).push(new Uint8Array(await readFile(exampleActor('echo-c'))))).digest;
    await client.startActor(frozen.id, { actor: 'solo', version: '1.0.0', digest, count: 1 });
    const docs = await openAppDocs(client.nc, client.subjects);
    await putRevision(docs, { name: 'shop', actors: [actorSpec('api', '1.0.0', digest, 2)], providers: [] });
    await waitFor(async () => total(await placedOf(client, 'shop'), (p) => p.hostId === frozen.id) === 1 && total(await placedOf(client, 'shop')) === 2, { timeoutMs: 60_000, what: 'one replica on each host' });
    await using rpc = await createRpcClient(client.nc, { lattice, caller: 'liveness-test' });
    await rpc.view.ready();
    await waitFor(() => rpc.view.liveVersions('solo').length === 1, { what: 'solo in the view' });

    // SIGSTOP: the socket stays open, so NATS still holds its subscriptions; only the beats say it is gone.
    frozen.process.kill('SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await waitFor(() => rpc.view.liveVersions('solo').length === 0, { timeoutMs: 15_000, intervalMs: 50, what: 'solo out of the view' });
      const viewMs = Date.now() - stoppedAt;
      await waitFor(async () => {
        const inv = await client.getInventory(steady.id);
        return inv.actors.find((a) => a.name === 'api')?.instances === 2;
      }, { timeoutMs: 20_000, intervalMs: 50, what: 'the replica placed on steady' });
      const placedMs = Date.now() - stoppedAt;
      console.log(`frozen host: out of the RPC view after ${viewMs} ms, its replica placed elsewhere after ${placedMs} ms (3 missed beats = 3000 ms)`);
      // Not before 2 missed beats: a late beat alone is no death while the host's subscriptions live.
      expect(viewMs).toBeGreaterThanOrEqual(2000);
      expect(placedMs).toBeGreaterThanOrEqual(2000);
      expect(placedMs).toBeLessThan(15_000);
    } finally {
      frozen.process.kill('SIGCONT');
    }
  }, 120_000);
});
