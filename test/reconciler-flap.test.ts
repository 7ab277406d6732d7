import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { nkeys } from 'nats';
import { describe, expect, it } from 'vitest';
import { connectControl } from '../lattice/control/index.ts';
import { openArtifacts } from '../lattice/state/index.ts';
import { actorSpec, openAppDocs, placedOf, putRevision, total } from './harness/apps.ts';
import { openDocuments } from '../lattice/documents/index.ts';
import { leaseKind, LEASE_KEY } from '../lattice/reconciler/index.ts';
import { exampleActor, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor, type HostProcess } from './harness/index.ts';

describe('reconciler hysteresis and the standalone controller', () => {
  it('reconciler - a host that died and came back is held out: it gets no new placements during the hold-down', async () => {
    await using nats = await startNats();
    const lattice = uniqueLattice('flap');
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    const seed = new TextDecoder().decode(nkeys.createServer().getSeed());
    // The leader runs on `steady`; `flappy` has no controller, so the leader sees it die and return.
    const steady = await spawnHost({ nats: nats.url, lattice, env, name: 'steady' });
    const flappyArgs = { nats: nats.url, lattice, env, name: 'flappy', extraArgs: ['--seed', seed, '--no-controller'] };
    let flappy: HostProcess = await spawnHost(flappyArgs);
    await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    try {
      const digest = (await (await openArtifacts(client.nc, client.subjects)).push(new Uint8Array(await readFile(exampleActor('echo-c'))))).digest;
      const docs = await openAppDocs(client.nc, client.subjects);
      await putRevision(docs, { name: 'shop', actors: [actorSpec('api', '1.0.0', digest, 4)], providers: [] });
      await waitFor(async () => total(await placedOf(client, 'shop'), (p) => p.hostId === flappy.id) === 2 && total(await placedOf(client, 'shop')) === 4, { timeoutMs: 60_000, what: 'two on each host' });

      flappy.kill('SIGKILL');
      await waitFor(async () => total(await placedOf(client, 'shop'), (p) => p.hostId === steady.id) === 4, { timeoutMs: 30_000, what: 'all four on steady' });
      flappy = await spawnHost(flappyArgs);
      // Without the hold-down the planner would move two instances back (steady has 4, flappy 0).
      const until = Date.now() + 6000;
      while (Date.now() < until) {
        expect(total(await placedOf(client, 'shop'), (p) => p.hostId === flappy.id)).toBe(0);
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(total(await placedOf(client, 'shop'))).toBe(4);
    } finally {
      await flappy[Symbol.asyncDispose]();
      await steady[Symbol.asyncDispose]();
    }
  }, 180_000);

  it('reconciler - `trellis controller` leads a lattice whose hosts run none, and places the app', async () => {
    await using nats = await startNats();
    const lattice = uniqueLattice('ctl');
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    await using host = await spawnHost({ nats: nats.url, lattice, env, extraArgs: ['--no-controller'] });
    await using controller = await spawnTrellis(['controller', '--nats', nats.url, '--lattice', lattice, '--name', 'ctl-1', '--log-level', 'debug'], 'controller ready', env);
    await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    const digest = (await (await openArtifacts(client.nc, client.subjects)).push(new Uint8Array(await readFile(exampleActor('echo-c'))))).digest;
    const docs = await openAppDocs(client.nc, client.subjects);
    await putRevision(docs, { name: 'solo', actors: [actorSpec('solo', '1.0.0', digest, 2)], providers: [] });
    await waitFor(async () => (await docs.statuses.get('solo'))?.value.phase === 'Deployed', { timeoutMs: 60_000, what: 'Deployed by the standalone controller' });
    expect(total(await placedOf(client, 'solo'), (p) => p.hostId === host.id)).toBe(2);
    const lease = await (await openDocuments(client.nc, client.subjects, leaseKind(3000))).get(LEASE_KEY);
    expect(lease?.value.name).toBe('ctl-1');
    expect(controller.logs.some((l) => l.msg === 'reconciler leading')).toBe(true);
  }, 120_000);
});
