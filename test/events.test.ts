import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { deployExample, spawnHost, startNats, TRELLIS_BIN, uniqueLattice, waitFor, type HostProcess, type NatsServer } from './harness/index.ts';
import { runCli } from './harness/cli.ts';

describe('trellis events: the lattice\'s CloudEvents, live and from the kept history', () => {
  let nats: NatsServer;
  let host: HostProcess;
  let client: ControlClient;
  const lattice = uniqueLattice('ev');
  const cli = (...args: string[]) => runCli([...args, '--nats', nats.url, '--lattice', lattice]);
  const ndjson = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; type: string; specversion: string; data: Record<string, unknown> });

  beforeAll(async () => {
    nats = await startNats();
    host = await spawnHost({ nats: nats.url, lattice, name: 'events-a', heartbeatMs: 200 });
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
  }, 120_000);

  afterAll(async () => {
    await host?.[Symbol.asyncDispose]();
    await client?.close();
    await nats?.stop();
  });

  it('events - --follow --json shows new events as CloudEvents; --type narrows them', async () => {
    const child = spawn(process.execPath, [TRELLIS_BIN, 'events', '--follow', '--json', '--type', 'actor_started', '--type', 'actor_stopped', '--nats', nats.url, '--lattice', lattice], { stdio: ['ignore', 'pipe', 'pipe'] });
    const seen: { kind: string; type: string; specversion: string; data: Record<string, unknown> }[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => seen.push(JSON.parse(line)));
    try {
      // The follower has subscribed once it has connected; start and stop until it has seen one.
      let version = 0;
      await waitFor(
        async () => {
          version += 1;
          await deployExample(client, 'hello', [host], { version: `1.0.${version}` });
          await client.stopActor(host.id, { actor: 'hello', version: `1.0.${version}` });
          return seen.some((e) => e.kind === 'actor_stopped');
        },
        { timeoutMs: 30_000, intervalMs: 50, what: 'a followed actor_stopped event' },
      );
      const stopped = seen.find((e) => e.kind === 'actor_stopped')!;
      expect(stopped).toMatchObject({ specversion: '1.0', type: 'dev.trellis.actor_stopped', data: { hostId: host.id, actor: 'hello' } });
      // Heartbeats (every 200 ms here) and other types stay out.
      expect(new Set(seen.map((e) => e.kind))).toEqual(new Set(['actor_started', 'actor_stopped']));
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('events - without --follow the kept events of the last minutes come back, in order, without heartbeats; readable without --json', async () => {
    const kept = await waitFor(
      async () => {
        const r = await cli('events', '--since', '10m', '--json');
        const events = ndjson(r.stdout);
        return r.code === 0 && events.some((e) => e.kind === 'actor_stopped') && events;
      },
      { timeoutMs: 20_000, what: 'kept events' },
    );
    const kinds = kept.map((e) => e.kind);
    expect(kinds).not.toContain('host_heartbeat');
    expect(kinds.indexOf('actor_started')).toBeLessThan(kinds.indexOf('actor_stopped'));
    const text = await cli('events', '--since', '10m', '--type', 'actor_stopped');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/actor_stopped\s+hostId=\S{8} actor=hello version=1\.0\.\d+ reason=/);
    // Bounded by age and count (no max_bytes: JetStream would reserve it from the server's storage).
    const jsm = await client.nc.jetstreamManager();
    for (const name of [client.subjects.streams.events, client.subjects.streams.logs]) {
      const { config } = await jsm.streams.info(name);
      expect(config.max_age, name).toBeGreaterThan(0);
      expect(config.max_msgs, name).toBeGreaterThan(0);
      expect(config.max_msg_size, name).toBeGreaterThan(0);
      expect(config.max_bytes, name).toBe(-1);
    }
    // A bad type is refused with the list of types.
    const bad = await cli('events', '--type', 'nope');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('TRELLIS_BAD_OPTION');
    expect(bad.stderr).toContain('actor_started');
  });
});
