/**
 * An actor unloaded while a worker is still adding it (here: held in its NATS connect) must not
 * be left serving: its add sees the remove once the connection is up and never subscribes.
 */
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { buildExampleActors } from '../actors/index.ts';
import { ComponentCache } from '../host/runtime/compile.ts';
import { ActorPool, completeCapabilities } from '../host/runtime/pool.ts';
import { WorkerPool } from '../host/runtime/workers.ts';
import { workerScript } from '../host/runtime/worker-script.ts';
import { compilePolicy } from '../lattice/policy/index.ts';
import { TrellisError } from '../lattice/errors/index.ts';
import { startNats, waitFor, type NatsServer } from './harness/index.ts';

/** A TCP proxy to NATS that holds every connection until `release()`. */
async function holdingProxy(target: number): Promise<{ port: number; held: () => number; release(): void; close(): Promise<void> }> {
  const waiting: Socket[] = [];
  const open: Socket[] = [];
  let released = false;
  const pipe = (s: Socket) => {
    const up = tcpConnect(target, '127.0.0.1');
    open.push(s, up);
    s.pipe(up).pipe(s);
    s.on('error', () => up.destroy());
    up.on('error', () => s.destroy());
  };
  const server: Server = createServer((s) => (released ? pipe(s) : waiting.push(s)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    held: () => waiting.length,
    release() {
      released = true;
      for (const s of waiting.splice(0)) pipe(s);
    },
    async close() {
      for (const s of [...waiting, ...open]) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('runtime add race', () => {
  let nats: NatsServer;
  let paths: Awaited<ReturnType<typeof buildExampleActors>>;
  beforeAll(async () => {
    paths = await buildExampleActors();
    nats = await startNats();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('runtime add race - an actor closed while its workers still connect never joins its queue group', async () => {
    const proxy = await holdingProxy(nats.port);
    const logger = pino({ level: 'silent' });
    const workers = new WorkerPool(2, await workerScript(), logger, (err) => new TrellisError('TRELLIS_WASM_TRAP', err.message));
    try {
      const cache = new ComponentCache(join(tmpdir(), 'trellis-runtime-test-cache'));
      const policy = compilePolicy({});
      const { component } = await cache.transpiled(await readFile(paths['echo-c']));
      const modules = await cache.compiled(component, policy.maxMemoryPages);
      const subject = `trellis.addrace.${process.pid}.rpc`;
      const pool = new ActorPool(
        {
          name: 'race',
          actor: 'race',
          version: '1.0.0',
          world: component.world,
          jsUrl: component.jsUrl,
          modules,
          policy,
          sandbox: { actor: 'race', env: [], allowedEnvVars: [], allowedHosts: [], dirs: [] },
          capabilities: completeCapabilities(undefined),
          logger,
          serve: { servers: [`nats://127.0.0.1:${proxy.port}`], connectionName: 'trellis-host-addrace/race', subject, queue: subject, hostId: 'addrace', version: '1.0.0', progress() {}, fail() {}, record() {} },
        },
        workers,
      );
      void pool.start().catch(() => {});
      // Both workers are inside add(), waiting for their lattice connection.
      await waitFor(() => proxy.held() === 2, { what: 'both worker connections held' });
      // Close: stop-serving goes out now (remove once it is answered), while the adds still wait.
      const closing = pool.close();
      proxy.release();
      await closing;
      // Their connections come up now; a worker that carried on with the add would subscribe.
      const connz = async () =>
        ((await (await fetch(`${nats.monitorUrl}/connz?subs=1&limit=1000`)).json()) as { connections: { name?: string; subscriptions_list?: string[] }[] }).connections.filter((c) =>
          c.name?.startsWith('trellis-host-addrace/worker-'),
        );
      await waitFor(async () => (await connz()).length === 2, { what: 'both worker connections up' });
      // The subscribe would follow the connect at once: give it a few round trips to show.
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        for (const c of await connz()) expect(c.subscriptions_list ?? []).not.toContain(subject);
      }
    } finally {
      await workers.close();
      await proxy.close();
    }
  });
});
