/**
 * `trellis up --secure`: the embedded server admits only the role keys `up` made; the operator's
 * key (printed as a path, never as a seed) drives the CLI, the gateway's key runs a gateway, and
 * nobody gets in without one.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TRELLIS_BIN, spawnTrellis } from './harness/index.ts';

const exec = promisify(execFile);

describe('security - trellis up --secure', { timeout: 120_000 }, () => {
  it('up - --secure makes a key per role; the operator key lists the host, no key is refused, the gateway key serves', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'up-secure-'));
    const child = spawn(process.execPath, [TRELLIS_BIN, 'up', '--secure', '--bare', '--port', '0', '--gateway', '127.0.0.1:0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => child.once('exit', r));
    let stdout = '';
    try {
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          stdout += `${line}\n`;
          if (line.includes('Ctrl-C stops')) resolve();
        });
        void exited.then(() => reject(new Error(`up exited: ${stdout}`)));
      });
      const url = /nats:\/\/127\.0\.0\.1:\d+/.exec(stdout)![0];
      const run = (env: NodeJS.ProcessEnv) => exec(process.execPath, [TRELLIS_BIN, 'get', 'hosts', '--json', '--nats', url], { env: { ...process.env, ...env } }).then((r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => e);
      const refused = await run({});
      expect(refused.code).toBe(1);
      expect(JSON.parse(refused.stdout).error.code).toBe('TRELLIS_NATS_AUTH');
      const operator = path.join(dataDir, 'creds', 'operator.nk');
      expect(stdout).toContain(`TRELLIS_NATS_NKEY=${operator}`);
      const listed = await run({ TRELLIS_NATS_NKEY: operator });
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)).toHaveLength(1);
      for (const role of ['host', 'controller', 'provider', 'gateway', 'operator']) {
        const file = path.join(dataDir, 'creds', `${role}.nk`);
        expect((await stat(file)).mode & 0o077, role).toBe(0);
        expect(stdout.includes((await readFile(file, 'utf8')).trim()), role).toBe(false);
      }
      await using gateway = await spawnTrellis(['gateway', '--nats', url, '--listen', '127.0.0.1:0'], 'gateway ready', { TRELLIS_NATS_NKEY: path.join(dataDir, 'creds', 'gateway.nk') });
      expect(gateway.ready.url).toMatch(/^http:/);
    } finally {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });
});
