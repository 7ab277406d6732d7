import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type Host } from '../host/index.ts';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openLinks } from '../lattice/links/index.ts';
import { decode, decodeEvent, encode, type LatticeEvent, type ProviderReply } from '../lattice/wire/index.ts';
import { openHttpRoutes } from '../lattice/http-routes/index.ts';
import { deployExample, processAlive, spawnHost, startNats, TRELLIS_BIN, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';

describe('providers, links and the local-first gateway', () => {
  let nats: NatsServer;
  let host: Host;
  let client: ControlClient;
  const lattice = uniqueLattice('prov');
  const events: LatticeEvent[] = [];

  const start = (name: string, actor: string, version: string, hostId: string, policy?: Record<string, unknown>) => deployExample(client, name, [hostId], { actor, version, count: 2, policy });

  beforeAll(async () => {
    nats = await startNats();
    host = await startHost({ nats: nats.url, lattice, logLevel: 'silent', heartbeatMs: 500, gateway: '127.0.0.1:0' });
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    client.nc.subscribe(client.subjects.allEvents(), { callback: (_e, m) => events.push(decodeEvent(m.data)) });
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await host?.stop();
    await nats?.stop();
  });

  it('providers - a crashed provider is restarted with backoff, announced, and serves again', async () => {
    await client.startProvider(host.id, { provider: 'keyvalue-nats' });
    await start('counter', 'counter', '1.0.0', host.id);
    await (await openLinks(client.nc, client.subjects)).put('counter', 'keyvalue-nats', { bucket: `c-${lattice}` });
    await (await openHttpRoutes(client.nc, client.subjects)).add('/counter', 'counter');
    const gw = host.gateway!.url;
    await waitFor(async () => (await fetch(`${gw}/counter`, { method: 'POST' })).status === 200, { what: 'counter answers' });
    const before = (await client.getInventory(host.id)).providers[0]!;
    expect(before).toMatchObject({ name: 'keyvalue-nats', health: 'ok', restarts: 0 });
    process.kill(before.pid!, 'SIGKILL');
    const restarted = await waitFor(() => events.find((e) => e.kind === 'provider_restarted'), { what: 'provider_restarted' });
    expect(restarted.data).toMatchObject({ provider: 'keyvalue-nats', restarts: 1 });
    await waitFor(async () => (await client.getInventory(host.id)).providers[0]!.health === 'ok', { what: 'healthy again' });
    const after = await fetch(`${gw}/counter`, { method: 'POST' });
    expect(after.status).toBe(200);
    expect(Number(await after.text())).toBeGreaterThanOrEqual(2);
  });

  it('providers - a provider says it serves over its IPC channel (nothing on stdout at --log-level silent) and stops when the channel closes', async () => {
    // What a supervising host does: `trellis provider` with an IPC channel.
    const child = spawn(process.execPath, [TRELLIS_BIN, 'provider', 'keyvalue-nats', '--nats', nats.url, '--lattice', lattice, '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      let stdout = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      const ready = await new Promise<unknown>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ready message in 30 s')), 30_000);
        child.once('message', (m) => { clearTimeout(timer); resolve(m); });
        void exited.then((code) => { clearTimeout(timer); reject(new Error(`provider exited with ${code}`)); });
      });
      expect(ready).toEqual({ type: 'ready' });
      // Ready means serving: a request sent right away is answered.
      const request = { actor: 'probe', op: 'exists', config: { bucket: `ready-${lattice}` }, args: ['k'] };
      const reply = decode<ProviderReply>((await client.nc.request(client.subjects.provider('keyvalue-nats'), encode(request), { timeout: 10_000 })).data);
      expect(reply).toEqual({ ok: true, value: false });
      expect(stdout).toBe('');
      // The channel closing is how a provider learns its host is gone.
      child.disconnect();
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))])).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('providers - a provider started by a host process exits when that host is SIGKILLed', async () => {
    const victim = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 500 });
    let pid: number | undefined;
    try {
      await client.startProvider(victim.id, { provider: 'keyvalue-nats' });
      pid = (await client.getInventory(victim.id)).providers[0]!.pid;
      expect(pid).toBeGreaterThan(0);
      expect(processAlive(pid!)).toBe(true);
      victim.kill('SIGKILL');
      await victim.exited;
      // Generous: the provider drains for at most 3 s after it notices.
      await waitFor(() => !processAlive(pid!), { timeoutMs: 10_000, what: `provider ${pid} to exit after its host was killed` });
    } finally {
      victim.kill('SIGKILL');
      // Never leave an orphan behind, even when the test fails.
      if (pid && processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('links - an import without a link fails with an error naming the missing link', async () => {
    await start('counter', 'unlinked', '1.0.0', host.id);
    await (await openHttpRoutes(client.nc, client.subjects)).add('/unlinked', 'unlinked');
    const res = await waitFor(async () => {
      const r = await fetch(`${host.gateway!.url}/unlinked`, { method: 'POST' });
      return r.status === 404 ? undefined : r;
    }, { what: 'route live' });
    expect(res.status).toBe(502);
    expect(await res.text()).toContain('unlinked has no keyvalue link; run: trellis link put unlinked keyvalue-nats');
  });

  it('http-client - outbound HTTP reaches allowed hosts only', async () => {
    const server = http.createServer((_req, res) => res.end('from outside'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      await client.startProvider(host.id, { provider: 'http-client' });
      await (await openLinks(client.nc, client.subjects)).put('fetcher', 'http-client', {});
      await start('hostile-js', 'fetcher', '1.0.0', host.id, { allowedHosts: [`127.0.0.1:${port}`] });
      await (await openHttpRoutes(client.nc, client.subjects)).add('/fetcher', 'fetcher');
      const gw = host.gateway!.url;
      const allowed = await waitFor(async () => {
        const r = await fetch(`${gw}/fetcher/http?url=${encodeURIComponent(`http://127.0.0.1:${port}/`)}`);
        return r.status === 404 ? undefined : r;
      }, { what: 'fetcher route' });
      expect(allowed.status).toBe(200);
      expect(await allowed.text()).toContain('from outside');
      const denied = await fetch(`${gw}/fetcher/http?url=${encodeURIComponent('http://example.com/')}`);
      expect(denied.status).toBe(502);
      expect(await denied.text()).toContain('host not allowed: example.com');
    } finally {
      server.close();
    }
  });

  it('actors - one actor calls another by name through the lattice', async () => {
    await start('hello', 'greeter', '1.0.0', host.id);
    const other = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 500 });
    try {
      // The callee runs only on another host process, so the call must cross NATS.
      await start('echo-c', 'shouter', '1.0.0', other.id);
      await (await openHttpRoutes(client.nc, client.subjects)).add('/greeter', 'greeter');
      const res = await waitFor(async () => {
        const r = await fetch(`${host.gateway!.url}/greeter?name=lattice&via=shouter`);
        return r.status === 200 ? r : undefined;
      }, { what: 'greeter via shouter' });
      expect(await res.text()).toBe('hello, lattice');
      const missing = await fetch(`${host.gateway!.url}/greeter?name=x&via=nobody`);
      expect(missing.status).toBe(502);
      expect(await missing.text()).toContain('TRELLIS_NO_RESPONDERS');
    } finally {
      await other[Symbol.asyncDispose]();
    }
  });

  it('gateway - local first: a host with a local instance answers without NATS; other versions go over the lattice', async () => {
    await start('echo-c', 'local', '1.0.0', host.id);
    const other = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 500 });
    try {
      await start('echo-c', 'local', '2.0.0', other.id);
      await (await openHttpRoutes(client.nc, client.subjects)).add('/local', 'local');
      // Count what crosses NATS on this actor's invocation subjects.
      const seen: string[] = [];
      client.nc.subscribe(`trellis.${lattice}.rpc.local.>`, { callback: (_e, m) => seen.push(m.subject) });
      await client.nc.flush();
      const gw = host.gateway!.url;
      await waitFor(async () => (await fetch(`${gw}/local`, { method: 'POST', body: 'x' })).headers.get('x-trellis-version') === '2.0.0', { what: 'v2 live in view' });
      // Pin everything to the local version: nothing may cross NATS.
      const { createRpcClient } = await import('../lattice/rpc/index.ts');
      await using admin = await createRpcClient(client.nc, { lattice });
      await admin.weights.set('local', { '1.0.0': 100, '2.0.0': 0 });
      await waitFor(async () => (await fetch(`${gw}/local`, { method: 'POST', body: 'x' })).headers.get('x-trellis-version') === '1.0.0', { what: 'weights applied' });
      seen.length = 0;
      for (let i = 0; i < 20; i++) {
        const r = await fetch(`${gw}/local`, { method: 'POST', body: `n${i}` });
        expect(await r.text()).toBe(`n${i}`);
        expect(r.headers.get('x-trellis-host')).toBe(host.id);
      }
      await client.nc.flush();
      expect(seen).toEqual([]);
      // Weights that pick the remote version use the lattice.
      await admin.weights.set('local', { '1.0.0': 0, '2.0.0': 100 });
      await waitFor(async () => (await fetch(`${gw}/local`, { method: 'POST', body: 'x' })).headers.get('x-trellis-host') === other.id, { what: 'remote version' });
      expect(seen.every((s) => s.endsWith('.2_0_0'))).toBe(true);
      expect(seen.length).toBeGreaterThan(0);
    } finally {
      await other[Symbol.asyncDispose]();
    }
  });
});
