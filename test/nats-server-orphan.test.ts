/**
 * An embedded nats-server must not outlive the process that started it (`trellis up`, a host
 * test): one left behind keeps its port and its JetStream directory, and the next `up` finds
 * them taken. Linux only (the parent-death signal is set with util-linux setpriv).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitFor } from './harness/index.ts';

const SERVER_MODULE = fileURLToPath(new URL('../lattice/nats-server/index.ts', import.meta.url));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(process.platform !== 'linux' || !existsSync('/usr/bin/setpriv'))('embedded nats-server', () => {
  it('nats-server - a parent killed by SIGKILL takes its server with it', async () => {
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { startNats } from ${JSON.stringify(SERVER_MODULE)}; const s = await startNats(); console.log('server', s.process.pid); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const pid = await waitFor(() => Number(/server (\d+)/.exec(out)?.[1]) || undefined, { what: 'the child to start its server', timeoutMs: 60_000 });
    expect(alive(pid)).toBe(true);
    parent.kill('SIGKILL');
    await waitFor(() => (alive(pid) ? undefined : true), { what: `nats-server ${pid} to exit after its parent was killed`, timeoutMs: 15_000 });
  });
});
