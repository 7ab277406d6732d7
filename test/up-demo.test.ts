/**
 * `trellis up` (what `npm run up` runs) deploys its demo from the manifest kept in the repo,
 * actors/demo/app.yaml: a real nats-server, host and gateway in one process, real HTTP.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from 'nats';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { openApps } from '../lattice/apps/index.ts';
import { subjects } from '../lattice/subjects/index.ts';
import { DEMO_MANIFEST } from '../host/cli/up.ts';
import { TRELLIS_BIN } from './harness/index.ts';

/** A TCP port free right now (nats-server needs a fixed one). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('trellis up', () => {
  it('up - deploys the demo app from actors/demo/app.yaml: revision 1 with its actors, links and routes, served over HTTP', async () => {
    const port = await freePort();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'up-demo-'));
    const child = spawn(process.execPath, [TRELLIS_BIN, 'up', '--port', String(port), '--data-dir', dataDir, '--gateway', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const out: string[] = [];
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`up not ready in 150 s:\n${out.join('\n')}\n${stderr}`)), 150_000);
        createInterface({ input: child.stdout }).on('line', (line) => {
          out.push(line);
          if (line.startsWith('Ctrl-C stops')) (clearTimeout(timer), resolve());
        });
        void exited.then((code) => (clearTimeout(timer), reject(new Error(`up exited with ${code}:\n${out.join('\n')}\n${stderr}`))));
      });
      const text = out.join('\n');
      expect(text).toContain(`app demo: revision 1 from ${DEMO_MANIFEST}`);
      expect(text).not.toContain('demo deployment failed');
      const gateway = /^gateway\s+(http:\/\/\S+)/m.exec(text)![1]!;

      // The stored revision is the manifest's: its actors, versions, replicas, links and routes.
      const manifest = parse(await readFile(DEMO_MANIFEST, 'utf8')) as { spec: { actors: { name: string; version: string; replicas: number }[] } };
      const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
      try {
        const rev = (await (await openApps(nc, subjects('default'))).current('demo'))!.value;
        expect(rev.revision).toBe(1);
        expect(rev.spec.actors.map((a) => [a.name, a.version, a.replicas])).toEqual(manifest.spec.actors.map((a) => [a.name, a.version, a.replicas]));
        expect(rev.spec.actors.flatMap((a) => a.routes.map((r) => r.prefix))).toEqual(['/hello', '/counter']);
        expect(rev.spec.actors.find((a) => a.name === 'counter')!.links).toEqual([{ provider: 'keyvalue-nats', config: { bucket: 'counters' } }]);
      } finally {
        await nc.close();
      }

      const hello = await fetch(`${gateway}/hello?name=up`);
      expect(hello.status).toBe(200);
      expect(await hello.text()).toContain('up');
      const first = await fetch(`${gateway}/counter`, { method: 'POST' });
      expect(first.status).toBe(200);
      const n = Number(await first.text());
      const second = await fetch(`${gateway}/counter`, { method: 'POST' });
      expect(Number(await second.text())).toBe(n + 1);
    } finally {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }, 240_000);
});
