/**
 * Canary releases end to end: real nats-server, two host processes (without controllers), two
 * `trellis controller` processes (one leads), a real gateway and real HTTP traffic; every
 * canary is driven by the `trellis canary` CLI run as a child process. Intervals are 1-2 s;
 * time bounds are generous (the bench measures decision times).
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openDocuments } from '../lattice/documents/index.ts';
import { openHttpRoutes } from '../lattice/http-routes/index.ts';
import { LEASE_KEY, leaseKind } from '../lattice/reconciler/index.ts';
import { openWeights, type WeightStore } from '../lattice/weights/index.ts';
import type { CanaryStatusView } from '../lattice/wire/index.ts';
import { canaryReader, cli, eventLog, versionLoad } from './harness/canary.ts';
import { deployExample, exampleActor, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor, type HostProcess, type NatsServer, type TrellisProcess } from './harness/index.ts';

describe('canary controller through real hosts, controllers, gateway and CLI', () => {
  let nats: NatsServer;
  let hosts: HostProcess[] = [];
  const controllers = new Map<string, TrellisProcess>();
  let gateway: TrellisProcess;
  let client: ControlClient;
  let weights: WeightStore;
  let canaries: Awaited<ReturnType<typeof canaryReader>>;
  let base: string;
  let echoDigest: string;
  let named = 0;
  const lattice = uniqueLattice('cc');
  const run = (...args: string[]) => cli(args, nats.url, lattice);

  const spawnController = async () => {
    const name = `ctl${++named}`;
    controllers.set(name, await spawnTrellis(['controller', '--nats', nats.url, '--lattice', lattice, '--name', name, '--lease-ttl-ms', '1500'], 'controller ready'));
  };
  const leaderName = async () => {
    const docs = await openDocuments(client.nc, client.subjects, leaseKind(1500));
    return (await docs.get(LEASE_KEY))?.value.name;
  };
  /** A hand-run stable actor on both hosts behind /<actor>, its weights at 100 %. */
  const stableActor = async (actor: string) => {
    echoDigest = await deployExample(client, 'echo-c', hosts, { actor, count: 1 });
    await (await openHttpRoutes(client.nc, client.subjects)).add(`/${actor}`, actor);
    await weights.set(actor, { '1.0.0': 100 });
    await waitFor(async () => (await fetch(`${base}/${actor}/x`)).status === 200, { timeoutMs: 20_000, what: `route /${actor}` });
  };
  const versionsRunning = async (actor: string) => {
    const inv = await client.pingHosts();
    return inv.flatMap((h) => h.actors.filter((a) => a.name === actor && a.instances > 0).map((a) => a.version));
  };
  const status = async (actor: string): Promise<CanaryStatusView> => JSON.parse((await run('canary', 'status', actor, '--json')).stdout) as CanaryStatusView;

  beforeAll(async () => {
    nats = await startNats();
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    hosts = await Promise.all([0, 1].map(() => spawnHost({ nats: nats.url, lattice, env, heartbeatMs: 1000, extraArgs: ['--no-controller'] })));
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    weights = await openWeights(client.nc, client.subjects);
    canaries = await canaryReader(client.nc, client.subjects);
    await spawnController();
    await spawnController();
    gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0', '--deadline-ms', '5000'], 'gateway ready');
    base = gateway.ready.url as string;
    await waitFor(leaderName, { timeoutMs: 20_000, what: 'a controller leader' });
  }, 180_000);

  afterAll(async () => {
    await gateway?.[Symbol.asyncDispose]();
    await Promise.all([...controllers.values()].map((c) => c[Symbol.asyncDispose]()));
    await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
    await client?.close();
    await nats?.stop();
  });

  it('canary - a healthy canary is promoted through its steps to 100 %, the old version drained with zero non-2xx', async () => {
    await stableActor('good');
    const events = eventLog(client.nc, client.subjects);
    const load = versionLoad(`${base}/good/x`, { concurrency: 4 });
    try {
      const started = await run('canary', 'start', 'good', '--to', '1.1.0', '--source', exampleActor('echo-c'), '--steps', '20,50,100', '--interval', '1s', '--min-requests', '10', '--success-rate', '0.95', '--p99-ms', '3000', '--json');
      expect(started.code, started.stderr).toBe(0);
      expect(JSON.parse(started.stdout)).toMatchObject({ actor: 'good', stable: '1.0.0', canary: '1.1.0', phase: 'Progressing', steps: [20, 50, 100] });
      const waited = await run('canary', 'status', 'good', '--wait', '--timeout', '120s', '--json');
      expect(waited.code, waited.stdout + waited.stderr).toBe(0);
      const view = JSON.parse(waited.stdout) as CanaryStatusView;
      expect(view.phase).toBe('Promoted');
      expect(view.weight.set).toBe(100);
      expect(view.history.filter((h) => h.decision === 'step').length).toBe(3);
      // Drained and stopped: only the new version runs, and it takes every request.
      await waitFor(async () => (await versionsRunning('good')).every((v) => v === '1.1.0') && (await versionsRunning('good')).length === 2, { timeoutMs: 30_000, what: 'old stable stopped' });
      const after = Date.now();
      await waitFor(() => load.answers.filter((a) => a.at > after).length > 20, { timeoutMs: 20_000, what: 'traffic after promotion' });
    } finally {
      await load.stop();
      events.stop();
    }
    expect(load.bad(), JSON.stringify(load.bad().slice(0, 5))).toHaveLength(0);
    expect(load.answers.filter((a) => a.version === '1.1.0').length).toBeGreaterThan(0);
    expect((await weights.get('good'))?.weights).toEqual({ '1.1.0': 100 });
    const kinds = events.events.filter((e) => (e.data as { actor?: string }).actor === 'good').map((e) => e.kind);
    expect(kinds).toContain('canary_started');
    expect(kinds.filter((k) => k === 'canary_step').length).toBeGreaterThanOrEqual(3);
    expect(kinds).toContain('canary_promoted');
    // Nothing runs any more: abort finds no canary and leaves the promoted version alone.
    const abort = await run('canary', 'abort', 'good');
    expect(abort.code).not.toBe(0);
    expect(abort.stderr).toContain('TRELLIS_NOT_FOUND');
    expect((await weights.get('good'))?.weights).toEqual({ '1.1.0': 100 });
  }, 240_000);

  it('canary - a canary failing 10 % of requests is rolled back within two intervals of its first traffic and gets no traffic after; promote is then refused', async () => {
    await stableActor('flaky');
    const events = eventLog(client.nc, client.subjects);
    const load = versionLoad(`${base}/flaky/x`, { concurrency: 6 });
    const intervalMs = 2000;
    let record;
    try {
      const started = await run('canary', 'start', 'flaky', '--to', '1.1.0', '--source', exampleActor('flaky-c'), '--steps', '30,100', '--interval', '2s', '--min-requests', '20', '--failure-limit', '1', '--progress-deadline', '60s');
      expect(started.code, started.stderr).toBe(0);
      record = await waitFor(async () => {
        const r = await canaries.get('flaky');
        return r && r.phase === 'RolledBack' && r;
      }, { timeoutMs: 90_000, what: 'rollback' });
      const endedAt = Date.parse(record.endedAt!);
      const first = load.answers.find((a) => a.version === '1.1.0');
      expect(first, 'the canary got traffic').toBeDefined();
      // Two intervals, plus the reporting period (1 s) and a busy machine's slack.
      expect(endedAt - first!.at).toBeLessThan(2 * intervalMs + 4000);
      // Stable 100 % at once; after a second every caller applied it.
      expect((await weights.get('flaky'))?.weights).toEqual({ '1.0.0': 100 });
      const since = Date.now() + 1000;
      await waitFor(() => load.answers.filter((a) => a.at > since).length > 50, { timeoutMs: 30_000, what: 'traffic after rollback' });
      expect(load.answers.filter((a) => a.at > since && a.version === '1.1.0')).toHaveLength(0);
      expect(load.answers.filter((a) => a.at > since && a.status !== 200)).toHaveLength(0);
    } finally {
      await load.stop();
      events.stop();
    }
    const rolled = events.events.find((e) => e.kind === 'canary_rolled_back' && (e.data as { actor: string }).actor === 'flaky');
    expect(rolled).toBeDefined();
    const data = rolled!.data as { reason: string; numbers?: Record<string, number> };
    expect(data.reason).toMatch(/success rate .* below/);
    expect(data.numbers?.successRate).toBeLessThan(0.99);
    expect(data.numbers?.canaryRequests).toBeGreaterThanOrEqual(20);
    // The canary's instances stop.
    await waitFor(async () => !(await versionsRunning('flaky')).includes('1.1.0'), { timeoutMs: 30_000, what: 'canary stopped' });
    // Promote during (after) a rollback: refused with a stable code, stable untouched.
    const promote = await run('canary', 'promote', 'flaky', '--full');
    expect(promote.code).not.toBe(0);
    expect(promote.stderr).toContain('TRELLIS_CONFLICT');
    expect((await canaries.get('flaky'))?.phase).toBe('RolledBack');
    expect((await weights.get('flaky'))?.weights).toEqual({ '1.0.0': 100 });
    const waited = await run('canary', 'status', 'flaky', '--wait', '--timeout', '5s');
    expect(waited.code).toBe(1);
    expect(waited.stdout).toContain('RolledBack');
  }, 240_000);

  it('canary - a canary whose p99 exceeds the limit is rolled back', async () => {
    await stableActor('slowpoke');
    const load = versionLoad(`${base}/slowpoke/x`, { concurrency: 4 });
    try {
      const started = await run('canary', 'start', 'slowpoke', '--to', '1.1.0', '--source', exampleActor('slow-c'), '--steps', '50,100', '--interval', '1s', '--min-requests', '10', '--p99-ms', '5', '--failure-limit', '2', '--success-rate', '0.5');
      expect(started.code, started.stderr).toBe(0);
      const record = await waitFor(async () => {
        const r = await canaries.get('slowpoke');
        return r && r.phase === 'RolledBack' && r;
      }, { timeoutMs: 90_000, what: 'rollback for latency' });
      const last = record.history.at(-1)!;
      expect(last.reason).toMatch(/p99 .* ms above 5 ms/);
      expect(last.numbers?.p99Ms).toBeGreaterThan(5);
      expect(record.failedChecks).toBe(2);
    } finally {
      await load.stop();
    }
  }, 180_000);
});
