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
      const watching = run('canary', 'status', 'good', '--watch', '--wait', '--timeout', '120s', '--json');
      const waited = await run('canary', 'status', 'good', '--wait', '--timeout', '120s', '--json');
      // --watch prints one JSON object per change, ending with the promotion.
      const watched = await watching;
      expect(watched.code, watched.stderr).toBe(0);
      const lines = watched.stdout.trim().split('\n').map((l) => JSON.parse(l) as CanaryStatusView);
      expect(lines.length).toBeGreaterThanOrEqual(3);
      expect(lines.at(-1)!.phase).toBe('Promoted');
      expect(new Set(lines.map((l) => l.step)).size).toBeGreaterThanOrEqual(3);
      expect(waited.code, waited.stdout + waited.stderr).toBe(0);
      const view = JSON.parse(waited.stdout) as CanaryStatusView;
      expect(view.phase).toBe('Promoted');
      expect(view.weight.set).toBe(100);
      expect(view.history.filter((h) => h.decision === 'step').length).toBe(3);
      // The JSON shape: the last judged window of both versions, the measured share.
      expect(view).toMatchObject({ actor: 'good', stable: '1.0.0', canary: '1.1.0', step: 3, steps: [20, 50, 100], failedChecks: 0, failureLimit: 2 });
      expect(view.window.canary.requests).toBeGreaterThanOrEqual(10);
      expect(view.window.canary.successRate).toBe(1);
      expect(typeof view.window.canary.p99Ms).toBe('number');
      expect(view.weight.actual).toBeGreaterThan(0);
      expect(view.window.stable).toHaveProperty('requests');
      expect(view.history[0]).toMatchObject({ decision: 'started', at: expect.any(String), reason: expect.any(String) });
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
  /** SIGKILL the leading controller and start another, so two stay; resolves once a new one leads. */
  const killLeader = async () => {
    const name = (await leaderName())!;
    controllers.get(name)!.process.kill('SIGKILL');
    await controllers.get(name)!.exited;
    controllers.delete(name);
    await spawnController();
    await waitFor(async () => {
      const now = await leaderName();
      return now !== undefined && now !== name;
    }, { timeoutMs: 30_000, what: 'a new leader' });
    return name;
  };
  const waitRecord = (actor: string, what: string, test: (r: NonNullable<Awaited<ReturnType<typeof canaries.get>>>) => boolean, timeoutMs = 90_000) =>
    waitFor(async () => {
      const r = await canaries.get(actor);
      return r && test(r) && r;
    }, { timeoutMs, what });

  it('canary - killing the controller leader mid-rollout continues from the same step', async () => {
    await stableActor('fo');
    const load = versionLoad(`${base}/fo/x`, { concurrency: 4 });
    try {
      const started = await run('canary', 'start', 'fo', '--to', '1.1.0', '--source', exampleActor('echo-c'), '--steps', '10,20,30,40,60,100', '--interval', '2s', '--min-requests', '10', '--p99-ms', '3000', '--success-rate', '0.95');
      expect(started.code, started.stderr).toBe(0);
      const before = await waitRecord('fo', 'step 2', (r) => r.step >= 2);
      await killLeader();
      // Every state seen from now on is at or past the step the old leader reached, in the same run.
      const seen: number[] = [];
      const done = await waitFor(async () => {
        const r = await canaries.get('fo');
        if (r) seen.push(r.step), expect(r.generation).toBe(before.generation);
        return r && r.phase === 'Promoted' && r;
      }, { timeoutMs: 150_000, what: 'promotion after failover' });
      expect(Math.min(...seen)).toBeGreaterThanOrEqual(before.step);
      expect(done.history.filter((h) => h.decision === 'started' || h.decision === 'restarted')).toHaveLength(1);
      expect(done.history.filter((h) => h.decision === 'step').map((h) => h.step)).toEqual([1, 2, 3, 4, 5, 6]);
      await waitFor(async () => !(await versionsRunning('fo')).includes('1.0.0'), { timeoutMs: 30_000, what: 'old stable retired by the new leader' });
    } finally {
      await load.stop();
    }
    expect(load.bad()).toHaveLength(0);
  }, 300_000);

  it('canary - pause, leader failover, resume: the pause holds through the failover and the run goes on from its step', async () => {
    await stableActor('pz');
    const started = await run('canary', 'start', 'pz', '--to', '1.1.0', '--source', exampleActor('echo-c'), '--steps', '20,50,100', '--interval', '1s', '--min-requests', '10', '--p99-ms', '3000', '--success-rate', '0.95');
    expect(started.code, started.stderr).toBe(0);
    const load = versionLoad(`${base}/pz/x`, { concurrency: 4 });
    try {
      await waitRecord('pz', 'step 1', (r) => r.step >= 1);
      const paused = await run('canary', 'pause', 'pz', '--json');
      expect(paused.code, paused.stderr).toBe(0);
      const at = JSON.parse(paused.stdout) as CanaryStatusView;
      expect(at.phase).toBe('Paused');
      await killLeader();
      // Healthy traffic for several intervals: a paused run does not advance under the new leader.
      await new Promise((r) => setTimeout(r, 5000));
      const still = (await canaries.get('pz'))!;
      expect(still.phase).toBe('Paused');
      expect(still.step).toBe(at.step);
      expect((await weights.get('pz'))?.weights['1.1.0']).toBe(still.weight.set);
      const resumed = await run('canary', 'resume', 'pz');
      expect(resumed.code, resumed.stderr).toBe(0);
      const done = await waitRecord('pz', 'promotion after resume', (r) => r.phase === 'Promoted', 150_000);
      const decisions = done.history.map((h) => h.decision);
      expect(decisions.indexOf('resumed')).toBeGreaterThan(decisions.indexOf('paused'));
      expect(done.history.filter((h) => h.decision === 'step').map((h) => h.step)).toEqual([1, 2, 3]);
    } finally {
      await load.stop();
    }
    // Resume of a finished run is refused, with its code.
    const again = await run('canary', 'resume', 'pz');
    expect(again.stderr).toContain('TRELLIS_CONFLICT');
  }, 300_000);

  it('canary - a new start while one runs restarts the analysis for the new version (new run, old canary stopped)', async () => {
    await stableActor('ns');
    const load = versionLoad(`${base}/ns/x`, { concurrency: 2, pauseMs: 20 });
    try {
      const first = await run('canary', 'start', 'ns', '--to', '1.1.0', '--source', exampleActor('echo-c'), '--steps', '10,100', '--interval', '60s', '--min-requests', '5');
      expect(first.code, first.stderr).toBe(0);
      const one = await waitRecord('ns', 'first run at step 1', (r) => r.step === 1);
      const second = await run('canary', 'start', 'ns', '--to', '1.2.0', '--source', exampleActor('echo-c'), '--steps', '10,100', '--interval', '60s', '--min-requests', '5', '--sticky-header', 'X-User', '--json');
      expect(second.code, second.stderr).toBe(0);
      const two = await waitRecord('ns', 'second run at step 1', (r) => r.canary === '1.2.0' && r.step === 1);
      expect(two.generation).toBe(one.generation + 1);
      expect(two.stable).toBe('1.0.0');
      expect(two.failedChecks).toBe(0);
      expect(two.history[0]).toMatchObject({ decision: 'restarted' });
      expect(two.history[0]!.reason).toContain('replaces the run of 1.1.0');
      await waitFor(async () => !(await versionsRunning('ns')).includes('1.1.0'), { timeoutMs: 30_000, what: 'replaced canary stopped' });
      expect(await weights.get('ns')).toMatchObject({ weights: { '1.0.0': 90, '1.2.0': 10 }, sticky: { header: 'x-user', canary: '1.2.0' } });
      // Weights that do not match the state (a hand edit) are put back by the leader.
      await weights.set('ns', { '1.0.0': 100 });
      await waitFor(async () => (await weights.get('ns'))?.weights['1.2.0'] === 10, { timeoutMs: 15_000, what: 'weights restored from the state' });
      expect((await run('canary', 'abort', 'ns')).code).toBe(0);
      await waitFor(async () => !(await versionsRunning('ns')).includes('1.2.0'), { timeoutMs: 30_000, what: 'aborted canary stopped' });
    } finally {
      await load.stop();
    }
    expect(load.bad()).toHaveLength(0);
    expect((await weights.get('ns'))?.weights).toEqual({ '1.0.0': 100 });
  }, 240_000);

  it('canary - abort during a full promote: a pending full promotion is aborted; racing the two, exactly one wins and the lattice matches it', async () => {
    await stableActor('afp');
    // A canary whose component is nowhere to be found never serves: its full promotion stays pending.
    const missing = `sha256:${'e'.repeat(64)}`;
    const started = await run('canary', 'start', 'afp', '--to', '1.1.0', '--source', missing, '--interval', '60s');
    expect(started.code, started.stderr).toBe(0);
    const full = await run('canary', 'promote', 'afp', '--full');
    expect(full.code, full.stderr).toBe(0);
    expect((await canaries.get('afp'))?.promoteFull).toBe(true);
    const aborted = await run('canary', 'abort', 'afp', '--json');
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(JSON.parse(aborted.stdout)).toMatchObject({ phase: 'Aborted', stable: '1.0.0' });
    expect((await weights.get('afp'))?.weights).toEqual({ '1.0.0': 100 });
    expect((await canaries.get('afp'))?.history.at(-1)?.reason).toContain('cancelling a pending full promotion');

    // Now the race itself, on a serving canary at step 1.
    const again = await run('canary', 'start', 'afp', '--to', '1.2.0', '--source', exampleActor('echo-c'), '--steps', '10,100', '--interval', '60s');
    expect(again.code, again.stderr).toBe(0);
    await waitRecord('afp', 'step 1', (r) => r.canary === '1.2.0' && r.step === 1);
    const [promote, abort] = await Promise.all([run('canary', 'promote', 'afp', '--full'), run('canary', 'abort', 'afp')]);
    expect([promote.code === 0, abort.code === 0].filter(Boolean)).toHaveLength(1);
    const final = (await canaries.get('afp'))!;
    if (promote.code === 0) {
      expect(final.phase).toBe('Promoted');
      expect(abort.stderr).toContain('TRELLIS_NOT_FOUND');
      await waitFor(async () => JSON.stringify((await weights.get('afp'))?.weights) === JSON.stringify({ '1.2.0': 100 }), { what: 'weights of the promotion' });
      await waitFor(async () => !(await versionsRunning('afp')).includes('1.0.0'), { timeoutMs: 30_000, what: 'stable retired' });
    } else {
      expect(final.phase).toBe('Aborted');
      expect(promote.stderr).toContain('TRELLIS_CONFLICT');
      expect((await weights.get('afp'))?.weights).toEqual({ '1.0.0': 100 });
      await waitFor(async () => !(await versionsRunning('afp')).includes('1.2.0'), { timeoutMs: 30_000, what: 'canary stopped' });
      expect(await versionsRunning('afp')).toContain('1.0.0');
    }
  }, 240_000);

  it('canary - abort with no canary running touches nothing: no document, no weights write, stable keeps running', async () => {
    await stableActor('quiet');
    const before = await weights.get('quiet');
    const aborted = await run('canary', 'abort', 'quiet');
    expect(aborted.code).not.toBe(0);
    expect(aborted.stderr).toContain('TRELLIS_NOT_FOUND');
    expect(aborted.stderr).toContain('no canary is running for quiet');
    expect(await canaries.get('quiet')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1500));
    expect(await weights.get('quiet')).toEqual(before);
    expect((await versionsRunning('quiet')).sort()).toEqual(['1.0.0', '1.0.0']);
    const statusOf = await run('canary', 'status', 'quiet');
    expect(statusOf.stderr).toContain('TRELLIS_NOT_FOUND');
  }, 120_000);
  it('canary - a step without enough traffic waits up to the progress deadline, then rolls back with reason "no data"', async () => {
    await stableActor('idle');
    const started = await run('canary', 'start', 'idle', '--to', '1.1.0', '--source', exampleActor('echo-c'), '--interval', '1s', '--min-requests', '50', '--progress-deadline', '4s');
    expect(started.code, started.stderr).toBe(0);
    const stepped = await waitRecord('idle', 'step 1', (r) => r.step === 1);
    // A trickle: a few requests, far from 50 canary requests.
    for (let i = 0; i < 5; i++) expect((await fetch(`${base}/idle/x`)).status).toBe(200);
    const rolled = await waitRecord('idle', 'rollback for no data', (r) => r.phase === 'RolledBack', 60_000);
    const last = rolled.history.at(-1)!;
    expect(last.reason).toMatch(/^no data: /);
    expect(last.numbers?.minRequests).toBe(50);
    expect(Date.parse(rolled.endedAt!) - Date.parse(stepped.stepStartedAt)).toBeGreaterThanOrEqual(4000);
    expect((await weights.get('idle'))?.weights).toEqual({ '1.0.0': 100 });
  }, 120_000);
  it('canary - with no leader, abort still takes effect (stable 100 %) and the next leader stops the canary it finds still running', async () => {
    await stableActor('orphan');
    const started = await run('canary', 'start', 'orphan', '--to', '1.1.0', '--source', exampleActor('echo-c'), '--interval', '60s');
    expect(started.code, started.stderr).toBe(0);
    await waitRecord('orphan', 'step 1', (r) => r.step === 1);
    // Every controller gone: no leader at all.
    for (const [name, c] of [...controllers]) {
      c.process.kill('SIGKILL');
      await c.exited;
      controllers.delete(name);
    }
    const aborted = await run('canary', 'abort', 'orphan');
    expect(aborted.code, aborted.stderr).toBe(0);
    expect((await weights.get('orphan'))?.weights).toEqual({ '1.0.0': 100 });
    await new Promise((r) => setTimeout(r, 2000));
    expect(await versionsRunning('orphan')).toContain('1.1.0');
    expect((await canaries.get('orphan'))?.pending).toEqual([expect.objectContaining({ kind: 'stop-version', version: '1.1.0' })]);
    await spawnController();
    await waitFor(async () => !(await versionsRunning('orphan')).includes('1.1.0'), { timeoutMs: 60_000, what: 'the new leader stops the aborted canary' });
    await waitRecord('orphan', 'settled', (r) => r.pending.length === 0 && r.settled === true, 30_000);
    expect((await versionsRunning('orphan')).sort()).toEqual(['1.0.0', '1.0.0']);
  }, 180_000);
});
