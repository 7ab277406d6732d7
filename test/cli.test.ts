import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type Host } from '../host/index.ts';
import { TRELLIS_BIN, exampleActor, startNats, uniqueLattice, type NatsServer } from './harness/index.ts';

const exec = promisify(execFile);

/** Run the real CLI; never throws, returns code and output. */
async function trellis(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [TRELLIS_BIN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('trellis CLI', () => {
  let nats: NatsServer;
  let host: Host;
  const lattice = uniqueLattice('cli');
  const env = () => ({ TRELLIS_NATS_URL: nats.url, TRELLIS_LATTICE: lattice });

  beforeAll(async () => {
    nats = await startNats();
    host = await startHost({ nats: nats.url, lattice, labels: { cloud: 'gcp' }, logLevel: 'silent' });
  });
  afterAll(async () => {
    await host?.stop();
    await nats?.stop();
  });

  it('cli - get hosts prints a table and --json an array with id, name, labels', async () => {
    const tableOut = await trellis(['get', 'hosts'], env());
    expect(tableOut.code).toBe(0);
    expect(tableOut.stdout).toMatch(/^ID\s+NAME\s+LABELS\s+UPTIME\s+VERSION/);
    expect(tableOut.stdout).toContain(host.id);
    const json = await trellis(['get', 'hosts', '--json'], env());
    const hosts = JSON.parse(json.stdout) as { id: string; name: string; labels: Record<string, string> }[];
    expect(hosts).toHaveLength(1);
    expect(hosts[0]).toMatchObject({ id: host.id, name: host.name, labels: { cloud: 'gcp' } });
  });

  it('cli - label put/del by host name, get inventory by id prefix', async () => {
    expect((await trellis(['label', 'put', host.name, 'zone=b', 'tier=1'], env())).code).toBe(0);
    const inv = JSON.parse((await trellis(['get', 'inventory', host.id.slice(0, 8), '--json'], env())).stdout);
    expect(inv.labels).toMatchObject({ zone: 'b', tier: '1', cloud: 'gcp' });
    expect((await trellis(['label', 'del', host.name, 'zone'], env())).code).toBe(0);
    expect((await host.inventory()).labels.zone).toBeUndefined();
    const refused = await trellis(['label', 'put', host.name, 'os=plan9'], env());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('TRELLIS_BAD_REQUEST');
  });

  it('cli - bad input gets a clear message with a code and a non-zero exit', async () => {
    const unknown = await trellis(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('TRELLIS_UNKNOWN_COMMAND');
    const badOption = await trellis(['host', '--heartbeat-ms', '0'], env());
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toContain('--heartbeat-ms');
    const badLattice = await trellis(['host', '--lattice', 'a.b'], env());
    expect(badLattice.stderr).toMatch(/--lattice.*may not contain/);
    const noHost = await trellis(['get', 'inventory', 'nosuchhost'], env());
    expect(noHost.code).toBe(1);
    expect(noHost.stderr).toContain('TRELLIS_NOT_FOUND');
    for (const flag of ['--deadline-ms', '--max-body-bytes']) {
      const zero = await trellis(['gateway', flag, '0'], env());
      expect(zero.code).toBe(2);
      expect(zero.stderr).toContain(`option ${flag}: must be an integer from 1`);
    }
    const noNats = await trellis(['get', 'hosts'], { TRELLIS_NATS_URL: 'nats://127.0.0.1:1' });
    expect(noNats.stderr).toContain('TRELLIS_NATS_UNAVAILABLE');
  });

  it('cli - deploy and invoke an actor, split traffic, inspect: start actor, get actors, invoke, route', async () => {
    const start = (version: string) => trellis(['start', 'actor', exampleActor('echo-c'), '--name', 'echo', '--version', version, '--host', host.name, '--json'], env());
    const started = JSON.parse((await start('1.0.0')).stdout);
    expect(started).toMatchObject({ actor: 'echo', version: '1.0.0', results: [{ host: host.id, ok: true }] });
    expect(started.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await start('1.1.0')).code).toBe(0);
    const actors = JSON.parse((await trellis(['get', 'actors', '--json'], env())).stdout);
    expect(actors.map((a: { version: string }) => a.version)).toEqual(['1.0.0', '1.1.0']);
    const invoked = JSON.parse((await trellis(['invoke', 'echo', '--data', 'over the lattice', '--json'], env())).stdout);
    expect(invoked).toMatchObject({ actor: 'echo', version: '1.1.0', hostId: host.id, attempts: 1, response: { status: 200, body: 'over the lattice' } });
    const bad = await trellis(['route', 'set', 'echo', '1.0.0=90', '1.1.0=20'], env());
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('TRELLIS_BAD_WEIGHTS');
    expect((await trellis(['route', 'set', 'echo', '1.0.0=100', '1.1.0=0'], env())).code).toBe(0);
    const route = JSON.parse((await trellis(['route', 'get', 'echo', '--json'], env())).stdout);
    expect(route).toMatchObject({ weights: { '1.0.0': 100, '1.1.0': 0 }, effective: { '1.0.0': 100, '1.1.0': 0 } });
    expect(JSON.parse((await trellis(['invoke', 'echo', '--data', 'x', '--json'], env())).stdout).version).toBe('1.0.0');
    const stopped = await trellis(['stop', 'actor', 'echo'], env());
    expect(stopped.stdout).toContain('stopped echo@1.0.0');
  });

  it('cli - a policy file with relative dirs resolves them from its own folder, not the host\'s', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-policy-'));
    await mkdir(path.join(dir, 'data'));
    const policy = path.join(dir, 'policy.yaml');
    await writeFile(policy, 'maxMemoryPages: 64\nallowedDirs:\n  - guestPath: /data\n    hostPath: ./data\n    readonly: true\n');
    const started = await trellis(['start', 'actor', exampleActor('echo-c'), '--name', 'sandboxed', '--version', '1.0.0', '--policy', policy, '--json'], env());
    expect(JSON.parse(started.stdout).results).toEqual([expect.objectContaining({ ok: true })]);
    const missing = await trellis(['start', 'actor', exampleActor('echo-c'), '--name', 'sandboxed', '--version', '2.0.0', '--policy', path.join(dir, 'nope.yaml')], env());
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('TRELLIS_FILE_UNREADABLE');
    expect(missing.stderr).toContain(path.join(dir, 'nope.yaml'));
  });

  it('cli - missing files name themselves with TRELLIS_FILE_UNREADABLE; a bare digest starts what was pushed', async () => {
    const noBody = await trellis(['invoke', 'echo', '--file', '/nonexistent/body.bin'], env());
    expect(noBody.code).toBe(1);
    expect(noBody.stderr).toMatch(/cannot read request body \/nonexistent\/body\.bin: no such file \[TRELLIS_FILE_UNREADABLE\]/);
    const noComponent = JSON.parse((await trellis(['push', '/nonexistent/actor.wasm', '--json'], env())).stdout);
    expect(noComponent).toMatchObject({ ok: false, error: { code: 'TRELLIS_FILE_UNREADABLE' } });
    const pushed = JSON.parse((await trellis(['push', exampleActor('echo-c'), '--json'], env())).stdout) as { digest: string };
    const bare = pushed.digest.slice('sha256:'.length);
    const started = JSON.parse((await trellis(['start', 'actor', bare, '--name', 'bare', '--version', '1.0.0', '--json'], env())).stdout);
    expect(started).toMatchObject({ digest: pushed.digest, results: [{ ok: true }] });
    const answer = await trellis(['invoke', 'bare', '--data', 'by digest'], env());
    expect(answer.stdout).toBe('by digest');
    expect((await trellis(['stop', 'actor', 'bare'], env())).code).toBe(0);
  });

  it('cli - every command that prints answers --json with exactly one JSON value, failures included', async () => {
    const runs: string[][] = [
      ['get', 'hosts'],
      ['get', 'inventory', host.name],
      ['label', 'put', host.name, 'json=1'],
      ['label', 'del', host.name, 'json'],
      ['get', 'actors'],
      ['weights', 'set', 'nobody', '1.0.0=100', '--force'],
      ['weights', 'get', 'nobody'],
      ['weights', 'del', 'nobody'],
      ['route', 'del', 'nobody'],
      ['link', 'put', 'nobody', 'keyvalue-nats', 'bucket=b'],
      ['link', 'get'],
      ['link', 'del', 'nobody', 'keyvalue-nats'],
      ['http', 'route', 'add', '/j', 'nobody', '--hostname', 'j.example.com'],
      ['http', 'route', 'list'],
      ['http', 'route', 'del', '/j', '--host', 'j.example.com'],
      ['stop', 'provider', 'keyvalue-nats'],
      ['get', 'inventory', 'nosuchhost'],
      ['start', 'actor', '/nonexistent.wasm', '--name', 'x', '--version', '1.0.0'],
      ['get', 'hosts', '--wait', 'soon'],
    ];
    for (const args of runs) {
      const out = await trellis([...args, '--json'], env());
      let value: unknown;
      expect(() => (value = JSON.parse(out.stdout)), `${args.join(' ')} --json printed: ${out.stdout}`).not.toThrow();
      expect(value, args.join(' ')).not.toBeUndefined();
    }
    const removed = JSON.parse((await trellis(['http', 'route', 'list', '--json'], env())).stdout) as { prefix: string }[];
    expect(removed.some((r) => r.prefix === '/j')).toBe(false);
    const badDuration = JSON.parse((await trellis(['get', 'hosts', '--wait', 'soon', '--json'], env())).stdout);
    expect(badDuration).toMatchObject({ ok: false, error: { code: 'TRELLIS_BAD_OPTION', message: expect.stringContaining('--wait') } });
  });

  it('cli - --help explains the commands and each subcommand', async () => {
    const help = await trellis(['--help']);
    expect(help.code).toBe(0);
    for (const word of ['up', 'host', 'get hosts', 'label put', 'stop host']) expect(help.stdout).toContain(word);
    const sub = await trellis(['host', '--help']);
    expect(sub.stdout).toContain('--label');
  });
});
