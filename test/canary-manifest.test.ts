/**
 * Canaries of app actors end to end: real nats-server, two hosts, one `trellis controller`, a
 * gateway and real HTTP. Applying a new version of an actor with a `canary:` block starts a
 * canary instead of a rolling update (both versions run side by side, owned by the app), and
 * promotion leaves the app's desired state on the new version; a rolled-back version stays
 * rolled back; a `trellis canary start --source` of an app's actor moves the app's desired
 * state (a new revision) on promotion.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApps, type AppStore } from '../lattice/apps/index.ts';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openWeights, type WeightStore } from '../lattice/weights/index.ts';
import { canaryReader, cli, versionLoad } from './harness/canary.ts';
import { exampleActor, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor, type HostProcess, type NatsServer, type TrellisProcess } from './harness/index.ts';

const manifest = (app: string, actor: string, version: string, wasm: string, canary?: string) => `apiVersion: trellis.dev/v1
kind: Application
metadata:
  name: ${app}
spec:
  actors:
    - name: ${actor}
      source: ${wasm}
      version: ${version}
      replicas: 2
      routes:
        - prefix: /${actor}
${canary ? `      canary:\n${canary}` : ''}`;

const CANARY = `        steps: [50, 100]
        interval: 1s
        minRequests: 10
        successRate: 0.95
        p99Ms: 3000
        failureLimit: 1
        progressDeadline: 60s
`;

describe('canaries of app actors through a real reconciler, hosts and gateway', () => {
  let nats: NatsServer;
  let hosts: HostProcess[] = [];
  let controller: TrellisProcess;
  let gateway: TrellisProcess;
  let client: ControlClient;
  let weights: WeightStore;
  let apps: AppStore;
  let canaries: Awaited<ReturnType<typeof canaryReader>>;
  let base: string;
  let dir: string;
  const lattice = uniqueLattice('cm');
  const run = (...args: string[]) => cli(args, nats.url, lattice);
  const owned = async (actor: string) => {
    const inv = await client.pingHosts();
    return inv.flatMap((h) => h.actors.filter((a) => a.name === actor && a.instances > 0).map((a) => ({ version: a.version, instances: a.instances, app: a.owner?.app })));
  };
  const count = (rows: { version: string; instances: number }[], version: string) => rows.filter((r) => r.version === version).reduce((n, r) => n + r.instances, 0);
  const apply = async (name: string, text: string) => {
    const file = path.join(dir, `${name}.yaml`);
    await writeFile(file, text);
    const out = await run('apply', '-f', file);
    expect(out.code, out.stderr).toBe(0);
  };

  beforeAll(async () => {
    nats = await startNats();
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-canary-app-'));
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    hosts = await Promise.all([0, 1].map(() => spawnHost({ nats: nats.url, lattice, env, heartbeatMs: 1000, extraArgs: ['--no-controller'] })));
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    weights = await openWeights(client.nc, client.subjects);
    apps = await openApps(client.nc, client.subjects);
    canaries = await canaryReader(client.nc, client.subjects);
    controller = await spawnTrellis(['controller', '--nats', nats.url, '--lattice', lattice, '--name', 'ctl'], 'controller ready');
    gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0', '--deadline-ms', '5000'], 'gateway ready');
    base = gateway.ready.url as string;
  }, 180_000);

  afterAll(async () => {
    await gateway?.[Symbol.asyncDispose]();
    await controller?.[Symbol.asyncDispose]();
    await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
    await client?.close();
    await nats?.stop();
  });

  it('canary - applying a new version of an actor with a canary block runs a canary, not a rolling update; promotion leaves the app on the new version; a failing version is rolled back and held', async () => {
    await apply('v1', manifest('shop', 'api', '1.0.0', exampleActor('echo-c'), CANARY));
    await waitFor(async () => count(await owned('api'), '1.0.0') === 2, { timeoutMs: 60_000, what: 'v1 deployed' });
    await waitFor(async () => (await fetch(`${base}/api/x`)).status === 200, { timeoutMs: 20_000, what: 'route /api' });
    const load = versionLoad(`${base}/api/x`, { concurrency: 4 });
    // Sampled all along: the stable version keeps its two instances until the promotion.
    const samples: { version: string; instances: number; app?: string }[][] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push(await owned('api'));
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      await apply('v2', manifest('shop', 'api', '1.1.0', exampleActor('echo-c'), CANARY));
      const record = await waitFor(async () => {
        const r = await canaries.get('api');
        return r && r.phase === 'Promoted' && r;
      }, { timeoutMs: 120_000, what: 'manifest canary promoted' });
      expect(record).toMatchObject({ app: 'shop', stable: '1.0.0', canary: '1.1.0' });
      expect(record.history.filter((h) => h.decision === 'step').map((h) => h.step)).toEqual([1, 2]);
      await waitFor(async () => count(await owned('api'), '1.0.0') === 0 && count(await owned('api'), '1.1.0') === 2, { timeoutMs: 60_000, what: 'old version retired' });
      sampling = false;
      await sampler;
      const promotedAt = Date.parse(record.endedAt!);
      // Side by side, owned by the app, never a rolling update: stable stayed at 2 while the canary ran.
      expect(samples.some((s) => count(s, '1.0.0') === 2 && count(s, '1.1.0') >= 1)).toBe(true);
      expect(samples.every((s) => s.every((g) => g.app === 'shop'))).toBe(true);
      const current = (await apps.current('shop'))!.value;
      expect(current.spec.actors.map((a) => `${a.name}@${a.version}`)).toEqual(['api@1.1.0']);
      expect((await weights.get('api'))?.weights).toEqual({ '1.1.0': 100 });
      expect(promotedAt).toBeGreaterThan(0);
    } finally {
      sampling = false;
      await sampler;
      await load.stop();
    }
    expect(load.bad(), JSON.stringify(load.bad().slice(0, 3))).toHaveLength(0);

    // A failing version by manifest: rolled back, and the reconciler keeps the promoted one.
    const flaky = versionLoad(`${base}/api/x`, { concurrency: 4 });
    try {
      await apply('v3', manifest('shop', 'api', '1.2.0', exampleActor('flaky-c'), CANARY));
      const rolled = await waitFor(async () => {
        const r = await canaries.get('api');
        return r && r.canary === '1.2.0' && r.phase === 'RolledBack' && r;
      }, { timeoutMs: 120_000, what: 'manifest canary rolled back' });
      expect(rolled.stable).toBe('1.1.0');
      expect(rolled.generation).toBe(2);
      await waitFor(async () => count(await owned('api'), '1.2.0') === 0, { timeoutMs: 60_000, what: 'rolled-back canary stopped' });
      await new Promise((r) => setTimeout(r, 3000));
      const rows = await owned('api');
      expect(count(rows, '1.1.0')).toBe(2);
      expect(count(rows, '1.2.0')).toBe(0);
      expect((await weights.get('api'))?.weights).toEqual({ '1.1.0': 100 });
    } finally {
      await flaky.stop();
    }
  }, 300_000);

  it('canary - `canary start --source` of an app actor: promotion moves the app desired state to a new revision', async () => {
    await apply('crm1', manifest('crm', 'crm', '1.0.0', exampleActor('echo-c')));
    await waitFor(async () => count(await owned('crm'), '1.0.0') === 2, { timeoutMs: 60_000, what: 'crm deployed' });
    await waitFor(async () => (await fetch(`${base}/crm/x`)).status === 200, { timeoutMs: 20_000, what: 'route /crm' });
    const before = (await apps.current('crm'))!.value.revision;
    const load = versionLoad(`${base}/crm/x`, { concurrency: 4 });
    try {
      const started = await run('canary', 'start', 'crm', '--to', '1.1.0', '--source', exampleActor('echo-c'), '--steps', '50,100', '--interval', '1s', '--min-requests', '10', '--success-rate', '0.95', '--p99-ms', '3000');
      expect(started.code, started.stderr).toBe(0);
      const waited = await run('canary', 'status', 'crm', '--wait', '--timeout', '120s');
      expect(waited.code, waited.stdout).toBe(0);
      const moved = await waitFor(async () => {
        const rev = (await apps.current('crm'))!.value;
        return rev.revision > before && rev;
      }, { timeoutMs: 30_000, what: 'a new app revision' });
      expect(moved.spec.actors.map((a) => `${a.name}@${a.version}`)).toEqual(['crm@1.1.0']);
      await waitFor(async () => count(await owned('crm'), '1.0.0') === 0 && count(await owned('crm'), '1.1.0') === 2, { timeoutMs: 60_000, what: 'old version retired' });
      const status = await waitFor(async () => {
        const s = (await apps.status('crm'))?.value;
        return s && s.revision === moved.revision && s.phase === 'Deployed' && s;
      }, { timeoutMs: 60_000, what: 'app Deployed at the new revision' });
      expect(status.actors.map((a) => a.version)).toEqual(['1.1.0']);
    } finally {
      await load.stop();
    }
    expect(load.bad(), JSON.stringify(load.bad().slice(0, 3))).toHaveLength(0);
  }, 300_000);
});
