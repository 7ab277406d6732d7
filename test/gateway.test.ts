import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openLinks } from '../lattice/links/index.ts';
import { openHttpRoutes } from '../lattice/http-routes/index.ts';
import { serveComponent } from '../host/runtime/index.ts';
import { deployExample, exampleActor, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor, type HostProcess, type NatsServer, type TrellisProcess } from './harness/index.ts';

describe('HTTP gateway end to end: curl → gateway → lattice → actor → key-value', () => {
  let nats: NatsServer;
  let hosts: HostProcess[] = [];
  let gateway: TrellisProcess;
  let client: ControlClient;
  let base: string;
  const lattice = uniqueLattice('gw');
  const bucket = `counters-${lattice}`;

  beforeAll(async () => {
    nats = await startNats();
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    hosts = await Promise.all([spawnHost({ nats: nats.url, lattice, env, heartbeatMs: 1000 }), spawnHost({ nats: nats.url, lattice, env, heartbeatMs: 1000 })]);
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    // Port 0: the gateway binds a free port itself and says which in its ready line.
    gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0', '--max-body-bytes', '65536', '--deadline-ms', '3000'], 'gateway ready');
    base = gateway.ready.url as string;
    await client.startProvider(hosts[0]!.id, { provider: 'keyvalue-nats' }, { timeoutMs: 60_000 });
    await deployExample(client, 'counter', hosts, { count: 4 });
    await deployExample(client, 'echo-c', hosts, { actor: 'echo', count: 4 });
    await deployExample(client, 'hostile-c', [hosts[0]!], { actor: 'hostile', count: 4, policy: { executionTimeoutMs: 30_000 } });
    await deployExample(client, 'http-js', [hosts[0]!], { actor: 'wasi', count: 4 });
    await (await openLinks(client.nc, client.subjects)).put('counter', 'keyvalue-nats', { bucket });
    const routes = await openHttpRoutes(client.nc, client.subjects);
    await routes.add('/counter', 'counter');
    await routes.add('/echo', 'echo');
    await routes.add('/hostile', 'hostile');
    await routes.add('/ghost', 'ghost');
    await routes.add('/wasi', 'wasi');
    // The gateway follows routes live; wait until it has them all.
    await waitFor(async () => (await fetch(`${base}/wasi/`)).status === 200, { timeoutMs: 20_000, what: 'gateway routes' });
  }, 180_000);

  afterAll(async () => {
    await gateway?.[Symbol.asyncDispose]();
    await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
    await client?.close();
    await nats?.stop();
  });

  it('gateway - 200 concurrent increments through two hosts and JetStream KV lose none', async () => {
    const responses = await Promise.all(Array.from({ length: 200 }, () => fetch(`${base}/counter?key=hits`, { method: 'POST' })));
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
    const texts = await Promise.all(responses.map((r) => r.text()));
    const values = texts.map(Number).sort((a, b) => a - b);
    if (values.some((v, i) => v !== i + 1)) console.log('increment answers:', texts.join(' '));
    expect(values).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const answeredBy = new Set(responses.map((r) => r.headers.get('x-trellis-host')));
    expect(answeredBy.size).toBe(2);
    expect(await (await fetch(`${base}/counter?key=hits`)).text()).toBe('200');
    const one = responses[0]!;
    expect(one.headers.get('x-trellis-actor')).toBe('counter');
    expect(one.headers.get('x-trellis-version')).toBe('1.0.0');
    expect(one.headers.get('x-request-id')).toMatch(/[0-9a-f-]{36}/);
  });

  it('gateway - each error status comes from a real case: 404, 413, 502, 503, 504', async () => {
    const status = async (url: string, init?: RequestInit) => {
      const r = await fetch(`${base}${url}`, init);
      return { status: r.status, body: (await r.json()) as { error: { code: string } } };
    };
    expect(await status('/no/such/route')).toMatchObject({ status: 404, body: { error: { code: 'TRELLIS_NO_ROUTE' } } });
    expect(await status('/echo', { method: 'POST', body: new Uint8Array(100 * 1024) })).toMatchObject({ status: 413, body: { error: { code: 'TRELLIS_PAYLOAD_TOO_LARGE' } } });
    expect(await status('/hostile/trap')).toMatchObject({ status: 502, body: { error: { code: 'TRELLIS_WASM_TRAP' } } });
    expect(await status('/ghost')).toMatchObject({ status: 503, body: { error: { code: 'TRELLIS_NO_RESPONDERS' } } });
    const slow = await status('/hostile/loop');
    expect(slow.status).toBe(504);
    expect(['TRELLIS_DEADLINE_EXCEEDED', 'TRELLIS_TIME_LIMIT']).toContain(slow.body.error.code);
    // Nothing else was disturbed.
    expect((await fetch(`${base}/echo`, { method: 'POST', body: 'fine' }).then((r) => r.text()))).toBe('fine');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/trellis_gateway_requests_total\{[^}]*route="\/ghost"[^}]*status="503"/);
  });

  it('gateway - a standard wasi:http component answers exactly as under trellis run', async () => {
    const run = await serveComponent({ path: exampleActor('http-js'), listen: '127.0.0.1:0' });
    onTestFinished(() => run.close());
    const init = { method: 'POST', body: 'same body', headers: { 'x-probe': 'yes', 'content-type': 'text/plain' } };
    const viaGateway = await fetch(`${base}/wasi/echo?a=1`, init);
    const viaRun = await fetch(`${run.url}/echo?a=1`, init);
    expect(viaGateway.status).toBe(viaRun.status);
    type Echo = { headers: [string, string][] };
    const strip = (json: Echo) => ({ ...json, headers: json.headers.filter(([n]) => n !== 'host') });
    expect(strip((await viaGateway.json()) as Echo)).toEqual(strip((await viaRun.json()) as Echo));
    expect(viaGateway.headers.get('content-type')).toBe(viaRun.headers.get('content-type'));
  });

  it('gateway - SIGKILL of one host under HTTP load leaves zero non-2xx responses', async () => {
    const statuses: number[] = [];
    let running = true;
    const workers = Array.from({ length: 16 }, async () => {
      while (running) {
        const r = await fetch(`${base}/echo`, { method: 'POST', body: 'load' });
        await r.arrayBuffer();
        statuses.push(r.status);
      }
    });
    await new Promise((r) => setTimeout(r, 1000));
    hosts[1]!.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 2500));
    running = false;
    await Promise.all(workers);
    const bad = statuses.filter((s) => s < 200 || s >= 300);
    console.log(`gateway under SIGKILL: ${statuses.length} requests, ${bad.length} non-2xx`);
    expect(statuses.length).toBeGreaterThan(200);
    expect(bad).toEqual([]);
  });
});
