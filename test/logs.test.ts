import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { createRpcClient, type RpcClient } from '../lattice/rpc/index.ts';
import { deployExample, spawnHost, startNats, TRELLIS_BIN, uniqueLattice, waitFor, type HostProcess, type NatsServer } from './harness/index.ts';
import { runCli } from './harness/cli.ts';

describe('trellis logs: every host\'s lines with their bindings, live and read back', () => {
  let nats: NatsServer;
  let hosts: HostProcess[] = [];
  let client: ControlClient;
  let rpc: RpcClient;
  const lattice = uniqueLattice('lg');

  beforeAll(async () => {
    nats = await startNats();
    hosts = await Promise.all([spawnHost({ nats: nats.url, lattice, name: 'logs-a' }), spawnHost({ nats: nats.url, lattice, name: 'logs-b' })]);
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    await deployExample(client, 'hello', hosts);
    await deployExample(client, 'hostile-c', [hosts[0]!], { actor: 'hostile' });
    rpc = await createRpcClient(client.nc, { lattice });
  }, 180_000);

  afterAll(async () => {
    await rpc?.close();
    await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
    await client?.close();
    await nats?.stop();
  });

  const hello = (name: string, traceparent?: string) => rpc.invoke('hello', { method: 'GET', path: '/', query: `name=${name}`, headers: [], body: new Uint8Array() }, { traceparent });

  it('logs - --follow --json streams an actor\'s lines from both hosts, each with hostId, actor, version, invocationId and traceId', async () => {
    const child = spawn(process.execPath, [TRELLIS_BIN, 'logs', 'hello', '--follow', '--json', '--nats', nats.url, '--lattice', lattice], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    try {
      const traceId = 'aaaabbbbccccddddeeeeffff00001111';
      // The follower subscribes when it has connected: keep calling until both hosts' lines come.
      let n = 0;
      await waitFor(
        async () => {
          n += 1;
          await hello(`follow${n}`, `00-${traceId}-00f067aa0ba902b7-01`);
          return new Set(lines.map((l) => l.hostId)).size === 2;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: 'lines from both hosts' },
      );
      const ids = new Set(hosts.map((h) => h.id));
      for (const line of lines) {
        expect(line.actor).toBe('hello');
        expect(ids.has(line.hostId as string)).toBe(true);
      }
      const greeting = lines.find((l) => String(l.msg).startsWith('greeting follow'))!;
      expect(greeting).toMatchObject({ actor: 'hello', version: '1.0.0', lattice, guest: true, level: 30, traceId });
      expect(greeting.invocationId).toMatch(/^[0-9a-f-]{36}$/);
      // Each line is one invocation's: the invocation ids differ between calls.
      expect(new Set(lines.filter((l) => l.invocationId).map((l) => l.invocationId)).size).toBeGreaterThan(1);
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('logs - --since reads the kept lines back and exits; --host narrows to one host; without --json lines are readable', async () => {
    await hello('kept');
    const back = await waitFor(
      async () => {
        const r = await runCli(['logs', 'hello', '--since', '10m', '--json', '--nats', nats.url, '--lattice', lattice]);
        const parsed = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        return r.code === 0 && parsed.some((l) => l.msg === 'greeting kept') && parsed;
      },
      { timeoutMs: 20_000, what: 'the kept line' },
    );
    expect(new Set(back.map((l) => l.hostId)).size).toBe(2);
    const onA = await runCli(['logs', 'hello', '--since', '10m', '--host', 'logs-a', '--json', '--nats', nats.url, '--lattice', lattice]);
    expect(onA.code).toBe(0);
    const aLines = onA.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(aLines.length).toBeGreaterThan(0);
    expect(new Set(aLines.map((l) => l.hostId))).toEqual(new Set([hosts[0]!.id]));
    const text = await runCli(['logs', 'hello', '--since', '10m', '--nats', nats.url, '--lattice', lattice]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/INFO\s+\S{8} hello@1\.0\.0 \[[0-9a-f]{8} [0-9a-f]{16}\] guest: greeting kept/);
    // The hosts' own lines are there too, without an actor filter.
    const all = await runCli(['logs', '--since', '10m', '--json', '--nats', nats.url, '--lattice', lattice]);
    expect(all.stdout).toContain('"msg":"host started"');
  });

  it('logs - a trap is logged with its reason, its invocation and its trace', async () => {
    const traceId = '0123456789abcdef0123456789abcdef';
    await expect(rpc.invoke('hostile', { method: 'GET', path: '/trap', query: '', headers: [], body: new Uint8Array() }, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` })).rejects.toMatchObject({ code: 'TRELLIS_WASM_TRAP' });
    const line = await waitFor(
      async () => {
        const r = await runCli(['logs', 'hostile', '--since', '10m', '--json', '--nats', nats.url, '--lattice', lattice]);
        return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.code === 'TRELLIS_WASM_TRAP');
      },
      { timeoutMs: 20_000, what: 'the trap line' },
    );
    expect(line).toMatchObject({ actor: 'hostile', version: '1.0.0', hostId: hosts[0]!.id, traceId, level: 40 });
    expect(String(line.msg)).toMatch(/wasm trap/);
    expect(line.invocationId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
