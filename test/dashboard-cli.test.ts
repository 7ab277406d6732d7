/**
 * The dashboard's flags: `trellis up` serves the dashboard too and prints its URL (a real `up`
 * process with its own nats-server and host; the page and its state over real HTTP); a bad
 * address fails before anything starts, and a port in use costs `up` the page, not the lattice.
 * `trellis dashboard` refuses a bad --listen and an unreachable NATS with their codes. A
 * dashboard cut off from NATS says so instead of showing its hosts die, and recovers.
 */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { startDashboard } from '../lattice/dashboard/index.ts';
import type { DashboardView } from '../lattice/dashboard/index.ts';
import { spawnHost, startNats, TRELLIS_BIN, uniqueLattice, waitFor } from './harness/index.ts';

/** Run `trellis up --bare ...` until it prints its "Ctrl-C stops" line; returns what it printed, then stops it. */
async function upOnce(extra: string[], check: (out: string, stderr: string) => Promise<void>): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'up-dash-'));
  const child = spawn(process.execPath, [TRELLIS_BIN, 'up', '--bare', '--port', '0', '--data-dir', dataDir, '--gateway', '127.0.0.1:0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const out: string[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`up not ready in 60 s:\n${out.join('\n')}\n${stderr}`)), 60_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        out.push(line);
        if (line.startsWith('Ctrl-C stops')) (clearTimeout(timer), resolve());
      });
      void exited.then((code) => (clearTimeout(timer), reject(new Error(`up exited with ${code}:\n${out.join('\n')}\n${stderr}`))));
    });
    await check(out.join('\n'), stderr);
  } finally {
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

describe('trellis up with the dashboard', () => {
  it('up - serves the dashboard, prints its URL, and the page state holds the embedded host', async () => {
    await upOnce(['--dashboard', '127.0.0.1:0'], async (out) => {
      const url = /^dashboard\s+(http:\/\/\S+)/m.exec(out)?.[1];
      expect(url, out).toBeDefined();
      expect(out).toContain(`open ${url} in a browser`);
      const page = await fetch(url!);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Trellis lattice</title>');
      const host = /^host\s+(\S+)\s+(\S+)/m.exec(out)!;
      const state = (await (await fetch(new URL('api/state', url))).json()) as { view: { lattice: string; hosts: { id: string; health: string }[] } };
      expect(state.view.lattice).toBe('default');
      expect(state.view.hosts.map((h) => [h.id, h.health])).toEqual([[host[2], 'ok']]);
    });
  }, 120_000);

  it('up - a dashboard port in use is reported and the lattice still comes up; --dashboard off serves none', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await upOnce(['--dashboard', `127.0.0.1:${port}`], async (out, stderr) => {
        expect(stderr).toContain(`dashboard not started on 127.0.0.1:${port}`);
        expect(out).not.toMatch(/^dashboard\s/m);
        expect(out).toMatch(/^gateway\s+http:/m);
      });
    } finally {
      taken.close();
    }
    await upOnce(['--dashboard', 'off'], async (out) => expect(out).not.toMatch(/^dashboard\s|dashboard on/m));
  }, 180_000);

  it('up - a bad --dashboard address fails at once, naming the flag', async () => {
    const child = spawn(process.execPath, [TRELLIS_BIN, 'up', '--bare', '--port', '0', '--dashboard', 'nowhere'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('--dashboard "nowhere" is not host:port');
    expect(stderr).toContain('TRELLIS_BAD_OPTION');
  }, 60_000);

  it('dashboard - `trellis dashboard` refuses a bad --listen and a NATS it cannot reach, with their codes', async () => {
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, [TRELLIS_BIN, 'dashboard', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { code, stderr };
    };
    const bad = await run(['--listen', 'here:there']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--listen "here:there" is not host:port [TRELLIS_BAD_OPTION]');
    // A port nobody listens on: taken and released again.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const down = await run(['--nats', `nats://127.0.0.1:${port}`, '--listen', '127.0.0.1:0']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('TRELLIS_NATS_UNAVAILABLE');
  }, 60_000);

  it('dashboard - cut off from NATS it says so and keeps its hosts as they were; after the server is back it follows again', async () => {
    const storeDir = await mkdtemp(path.join(os.tmpdir(), 'dash-nats-'));
    const lattice = uniqueLattice('dashnats');
    let nats = await startNats({ storeDir });
    const host = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 1000, env: { XDG_STATE_HOME: storeDir } });
    await using dashboard = await startDashboard({ nats: nats.url, lattice, listen: '127.0.0.1:0' });
    const view = async () => ((await (await fetch(new URL('api/state', dashboard.url))).json()) as { view: DashboardView }).view;
    try {
      await waitFor(async () => (await view()).hosts.some((h) => h.id === host.id && h.health === 'ok'), { timeoutMs: 15_000, what: 'the host on the dashboard' });
      await nats.stop();
      await waitFor(async () => (await view()).nats.connected === false, { timeoutMs: 15_000, what: 'the dashboard to notice' });
      // Longer than 3 beat periods: a dashboard judging by missed beats alone would call the host dead.
      await new Promise((r) => setTimeout(r, 4500));
      expect((await view()).hosts.map((h) => [h.id, h.health])).toEqual([[host.id, 'ok']]);
      nats = await startNats({ storeDir, port: nats.port });
      await waitFor(async () => (await view()).nats.connected, { timeoutMs: 30_000, what: 'the dashboard to reconnect' });
      await waitFor(async () => (await view()).hosts.some((h) => h.id === host.id && h.health === 'ok' && h.lastBeatMsAgo < 2500), { timeoutMs: 30_000, what: 'beats again' });
    } finally {
      await host[Symbol.asyncDispose]();
      await nats.stop();
    }
  }, 120_000);
});
