/**
 * Canary metrics and routing end to end: real nats-server, two host processes, a gateway
 * process, real HTTP. Per-version windows from both hosts and the gateway merge in a collector;
 * x-trellis-version pins (404 unknown, 503 known but not live, 200 pinned), also through
 * `trellis invoke --version`; sticky keys stay on the canary as its weight grows.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarize } from '../lattice/canary/analysis.ts';
import { total } from '../lattice/canary/histogram.ts';
import { stickyBucket } from '../lattice/canary/sticky.ts';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openHttpRoutes } from '../lattice/http-routes/index.ts';
import { collectMetrics, type MetricsCollector } from '../lattice/metrics/index.ts';
import { openWeights, type WeightStore } from '../lattice/weights/index.ts';
import { deployExample, spawnHost, spawnTrellis, startNats, TRELLIS_BIN, uniqueLattice, waitFor, type HostProcess, type NatsServer, type TrellisProcess } from './harness/index.ts';

const exec = promisify(execFile);

describe('canary metrics and routing through real hosts and a real gateway', () => {
  let nats: NatsServer;
  let hosts: HostProcess[] = [];
  let gateway: TrellisProcess;
  let client: ControlClient;
  let collector: MetricsCollector;
  let weights: WeightStore;
  let base: string;
  const lattice = uniqueLattice('canary');

  beforeAll(async () => {
    nats = await startNats();
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    hosts = await Promise.all([spawnHost({ nats: nats.url, lattice, env, heartbeatMs: 1000 }), spawnHost({ nats: nats.url, lattice, env, heartbeatMs: 1000 })]);
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    collector = await collectMetrics(client.nc, client.subjects);
    weights = await openWeights(client.nc, client.subjects);
    gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0', '--deadline-ms', '3000'], 'gateway ready');
    base = gateway.ready.url as string;
    // hostile-c: /ok answers 200, /status-503 a 503 response, /trap a Trellis error.
    await deployExample(client, 'hostile-c', hosts, { actor: 'svc', count: 2 });
    await deployExample(client, 'hostile-c', [hosts[0]!], { actor: 'svc', version: '1.1.0', count: 2 });
    await deployExample(client, 'hostile-c', [hosts[1]!], { actor: 'lonely', count: 1 });
    await deployExample(client, 'echo-c', [hosts[1]!], { actor: 'echo' });
    await deployExample(client, 'echo-c', [hosts[0]!], { actor: 'echo', version: '1.1.0' });
    const routes = await openHttpRoutes(client.nc, client.subjects);
    await routes.add('/svc', 'svc');
    await routes.add('/lonely', 'lonely');
    // Both versions live and no weights: the highest (1.1.0) takes unpinned calls until weights say otherwise.
    await weights.set('svc', { '1.0.0': 100 });
    await waitFor(async () => (await fetch(`${base}/svc/ok`)).headers.get('x-trellis-version') === '1.0.0', { timeoutMs: 20_000, what: 'gateway routes and weights' });
    await waitFor(async () => (await fetch(`${base}/lonely/ok`)).status === 200, { timeoutMs: 20_000, what: 'lonely route' });
  }, 180_000);

  afterAll(async () => {
    collector?.close();
    await gateway?.[Symbol.asyncDispose]();
    await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
    await client?.close();
    await nats?.stop();
  });

  it('canary - windows of two hosts and the gateway merge: 5xx responses and Trellis errors fail, unserved calls count once', async () => {
    // Let the windows of beforeAll's warm-up calls (published within a second) arrive before the
    // measured range starts, with room for a busy machine.
    await new Promise((r) => setTimeout(r, 2500));
    const since = Date.now();
    const get = (p: string) => fetch(`${base}/svc${p}`).then(async (r) => (await r.arrayBuffer(), r.status));
    const statuses = await Promise.all([...Array.from({ length: 40 }, () => get('/ok')), ...Array.from({ length: 6 }, () => get('/status-503')), get('/trap'), get('/trap')]);
    expect(statuses.filter((s) => s === 200)).toHaveLength(40);
    expect(statuses.filter((s) => s === 503)).toHaveLength(6);
    expect(statuses.filter((s) => s >= 500 && s !== 503)).toHaveLength(2);

    const svc = await waitFor(() => {
      const w = collector.window('svc', since)['1.0.0'];
      return w && w.requests >= 48 && w;
    }, { timeoutMs: 15_000, what: 'svc windows from both hosts' }).catch((err: unknown) => {
      throw new Error(`${String(err)}; merged so far: ${JSON.stringify(Object.entries(collector.window('svc', since)).map(([v, t]) => [v, t.requests, t.failures]))}`);
    });
    expect(collector.participants(since)).toEqual(expect.arrayContaining([hosts[0]!.id, hosts[1]!.id]));

    // A call that never reached a host: the only host of `lonely` is frozen, so its attempts
    // time out (or, once nats-server has dropped the frozen connection, find no responders)
    // and the gateway, not a host, counts the failure. The frozen host's windows were
    // collected above: a report published into a connection the server has just dropped is
    // lost (core NATS is at most once), which analysis tolerates as a window with less data.
    hosts[1]!.kill('SIGSTOP');
    let lonely: number;
    try {
      lonely = (await fetch(`${base}/lonely/ok`)).status;
    } finally {
      hosts[1]!.kill('SIGCONT');
    }
    expect([503, 504]).toContain(lonely);
    await waitFor(() => collector.window('lonely', since)['1.0.0'], { timeoutMs: 10_000, what: 'the gateway window of lonely' });

    // Two more seconds: anything counted twice would arrive by then.
    await new Promise((r) => setTimeout(r, 2000));
    const settled = collector.window('svc', since);
    expect(settled['1.0.0']).toMatchObject({ requests: 48, failures: 8 });
    expect(svc.requests).toBe(48);
    const summary = summarize(settled['1.0.0']!);
    expect(summary.successRate).toBeCloseTo(40 / 48, 5);
    // Every served call has a latency: the merged histogram holds all 48.
    expect(total(settled['1.0.0']!.histogram)).toBe(48);
    expect(summary.p99Ms).toBeGreaterThan(0);
    expect(settled['1.1.0']).toBeUndefined();
    expect(collector.window('lonely', since)['1.0.0']).toMatchObject({ requests: 1, failures: 1 });
    const participants = collector.participants(since);
    expect(participants.some((p) => p.startsWith('gateway-'))).toBe(true);
    expect(collector.rejected).toBe(0);
  });

  it('canary - x-trellis-version pins: 200 on the pinned version, 404 unknown, 503 known but not live, 400 not a version', async () => {
    const pinned = await Promise.all(Array.from({ length: 10 }, () => fetch(`${base}/svc/ok`, { headers: { 'x-trellis-version': '1.1.0' } })));
    expect(pinned.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(new Set(pinned.map((r) => r.headers.get('x-trellis-version')))).toEqual(new Set(['1.1.0']));

    const unknown = await fetch(`${base}/svc/ok`, { headers: { 'x-trellis-version': '9.9.9' } });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('TRELLIS_UNKNOWN_VERSION');

    // 2.0.0 is weighted (at 0) but runs nowhere: known, not live.
    await weights.set('svc', { '1.0.0': 100, '2.0.0': 0 });
    const notLive = await waitFor(async () => {
      const r = await fetch(`${base}/svc/ok`, { headers: { 'x-trellis-version': '2.0.0' } });
      return r.status !== 404 && r;
    }, { timeoutMs: 10_000, what: 'gateway sees the weights' });
    expect(notLive.status).toBe(503);
    expect(((await notLive.json()) as { error: { code: string } }).error.code).toBe('TRELLIS_NO_RESPONDERS');

    const bad = await fetch(`${base}/svc/ok`, { headers: { 'x-trellis-version': 'latest' } });
    expect(bad.status).toBe(400);
  });

  it('canary - trellis invoke --version gives the same codes', async () => {
    const run = async (version: string) => {
      try {
        const { stdout } = await exec(process.execPath, [TRELLIS_BIN, 'invoke', 'echo', '--version', version, '--data', 'pinned', '--json'], { env: { ...process.env, TRELLIS_NATS_URL: nats.url, TRELLIS_LATTICE: lattice }, timeout: 30_000 });
        return { code: 0, out: stdout };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, out: e.stdout + e.stderr };
      }
    };
    // 2.0.0 weighted at 0 and running nowhere: known, not live.
    await weights.set('echo', { '1.0.0': 100, '2.0.0': 0 });
    for (const version of ['1.0.0', '1.1.0']) {
      const ok = await run(version);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.out)).toMatchObject({ version, response: { status: 200, body: 'pinned' } });
    }
    const unknown = await run('9.9.9');
    expect(unknown.code).not.toBe(0);
    expect(unknown.out).toContain('TRELLIS_UNKNOWN_VERSION');
    const notLive = await run('2.0.0');
    expect(notLive.code).not.toBe(0);
    expect(notLive.out).toContain('TRELLIS_NO_RESPONDERS');
  });

  it('canary - sticky keys: a key on the canary at 10 % stays there at 30 % and 50 %', async () => {
    const keys = Array.from({ length: 120 }, (_, i) => `user-${i}`);
    const versionsOf = async () => {
      const out = new Map<string, string>();
      for (let i = 0; i < keys.length; i += 20) {
        const batch = keys.slice(i, i + 20);
        const rs = await Promise.all(batch.map((k) => fetch(`${base}/svc/ok`, { headers: { 'x-user': k } })));
        rs.forEach((r, j) => out.set(batch[j]!, `${r.status} ${r.headers.get('x-trellis-version')}`));
      }
      return out;
    };
    const expected = (canary: number) => new Map(keys.map((k) => [k, `200 ${stickyBucket(k) < canary ? '1.1.0' : '1.0.0'}`]));
    const onCanary = (m: Map<string, string>) => new Set([...m].filter(([, v]) => v === '200 1.1.0').map(([k]) => k));
    let previous = new Set<string>();
    for (const canary of [10, 30, 50]) {
      await weights.set('svc', { '1.0.0': 100 - canary, '1.1.0': canary }, undefined, { sticky: { header: 'x-user', canary: '1.1.0' } });
      // The gateway follows the weights document within about a second.
      const seen = await waitFor(async () => {
        const m = await versionsOf();
        return [...expected(canary)].every(([k, v]) => m.get(k) === v) && m;
      }, { timeoutMs: 15_000, intervalMs: 200, what: `sticky split at ${canary} %` });
      // Asked again, every key answers the same version.
      expect(await versionsOf()).toEqual(seen);
      const now = onCanary(seen);
      for (const k of previous) expect(now.has(k)).toBe(true);
      expect(now.size).toBeGreaterThan(previous.size);
      previous = now;
    }
    // The same keys from a cookie: the split is the key's, wherever it comes from.
    await weights.set('svc', { '1.0.0': 50, '1.1.0': 50 }, undefined, { sticky: { cookie: 'uid' } });
    const byCookie = async (k: string) => (await fetch(`${base}/svc/ok`, { headers: { cookie: `theme=dark; uid=${k}` } })).headers.get('x-trellis-version');
    await waitFor(async () => {
      for (const k of keys.slice(0, 40)) if ((await byCookie(k)) !== (stickyBucket(k) < 50 ? '1.1.0' : '1.0.0')) return false;
      return true;
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'sticky cookie' });
    // Requests without a key keep the weighted round robin: about half each at 50/50.
    const plain = await Promise.all(Array.from({ length: 40 }, () => fetch(`${base}/svc/ok`).then((r) => r.headers.get('x-trellis-version'))));
    expect(plain.filter((v) => v === '1.1.0').length).toBeGreaterThanOrEqual(10);
    expect(plain.filter((v) => v === '1.0.0').length).toBeGreaterThanOrEqual(10);
  });
});
