/**
 * Roles on a real nats-server whose `authorization` block is built from `trellis nats
 * permissions` output: each participant (a host running actors, its own controller under the
 * controller credential, the providers it launches under the provider credential, a standalone
 * gateway, the operator's CLI) runs under exactly its role's permissions and works; a gateway
 * credential cannot send control commands or write KV; a host credential cannot command other
 * hosts or reach another lattice. Every secret is looked for in every line they printed.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { nkeys, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectParticipant } from '../lattice/control/index.ts';
import { fromNatsError } from '../lattice/errors/index.ts';
import { compileNatsConnect, type Role } from '../lattice/options/index.ts';
import { openKv } from '../lattice/state/index.ts';
import { subjects as buildSubjects } from '../lattice/subjects/index.ts';
import { encode } from '../lattice/wire/index.ts';
import { TRELLIS_BIN, exampleActor, spawnHost, spawnTrellis, uniqueLattice, waitFor, type HostProcess, type TrellisProcess } from './harness/index.ts';
import { startConfiguredNats, type ConfiguredNats } from './harness/secure-nats.ts';

const exec = promisify(execFile);
const secret = (role: string) => `pw-${role}-${Math.random().toString(36).slice(2, 10)}`;

describe('security - each role under exactly its permissions', { timeout: 240_000 }, () => {
  const lattice = uniqueLattice('sec');
  const otherLattice = uniqueLattice('other');
  const passwords: Record<Role | 'intruder', string> = { host: secret('host'), gateway: secret('gateway'), provider: secret('provider'), controller: secret('controller'), operator: secret('operator'), intruder: secret('intruder') };
  const hostSeed = new TextDecoder().decode(nkeys.createServer().getSeed());
  const hostId = nkeys.fromSeed(new TextEncoder().encode(hostSeed)).getPublicKey();
  const printed: string[] = [];
  let nats: ConfiguredNats;
  let host: HostProcess;
  let gateway: TrellisProcess;
  let gatewayUrl: string;
  let dir: string;

  /** Run the real CLI as the operator (credentials in the environment); never throws. */
  async function operator(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = { ...process.env, TRELLIS_NATS_URL: nats.url, TRELLIS_LATTICE: lattice, TRELLIS_NATS_USER: 'operator', TRELLIS_NATS_PASSWORD: passwords.operator };
    try {
      const { stdout, stderr } = await exec(process.execPath, [TRELLIS_BIN, ...args], { env, timeout: 90_000 });
      printed.push(stdout, stderr);
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      printed.push(e.stdout, e.stderr);
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  /** A connection as one role's user, for the denied actions. */
  function connectAs(role: Role): Promise<NatsConnection> {
    return connectParticipant(compileNatsConnect({ servers: [nats.url], lattice, role, auth: { natsUser: role, natsPassword: passwords[role] } }), `test-${role}`);
  }

  beforeAll(async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'security-roles-state-'));
    // The server's users, each with the permissions the CLI prints for its role.
    const users: string[] = [];
    for (const role of ['host', 'gateway', 'provider', 'controller', 'operator'] as const) {
      const extra = role === 'host' ? ['--host-id', hostId] : role === 'provider' ? ['--bucket', 'counters'] : [];
      const { stdout } = await exec(process.execPath, [TRELLIS_BIN, 'nats', 'permissions', '--role', role, '--lattice', lattice, '--user', role, ...extra]);
      users.push(`{ user: ${role}, password: "${passwords[role]}", ${stdout.replace(/^#.*\n/, '')} }`);
    }
    // A user of another lattice: what a host of this one must never reach.
    const { stdout: intruder } = await exec(process.execPath, [TRELLIS_BIN, 'nats', 'permissions', '--role', 'operator', '--lattice', otherLattice, '--user', 'intruder']);
    users.push(`{ user: intruder, password: "${passwords.intruder}", ${intruder.replace(/^#.*\n/, '')} }`);
    nats = await startConfiguredNats(`authorization {\n  users = [\n${users.join(',\n')}\n  ]\n}`);

    host = await spawnHost({
      nats: nats.url,
      lattice,
      name: 'secure-host',
      extraArgs: ['--seed', hostSeed, '--nats-user', 'host', '--controller-user', 'controller', '--provider-user', 'provider', '--beat-ms', '500'],
      // A state dir of its own: an empty compile cache, so the host really fetches the artifacts.
      env: { TRELLIS_NATS_PASSWORD: passwords.host, TRELLIS_CONTROLLER_PASSWORD: passwords.controller, TRELLIS_PROVIDER_PASSWORD: passwords.provider, XDG_STATE_HOME: stateDir },
    });
    gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0', '--nats-user', 'gateway'], 'gateway ready', { TRELLIS_NATS_PASSWORD: passwords.gateway });
    gatewayUrl = gateway.ready.url as string;

    dir = await mkdtemp(path.join(os.tmpdir(), 'security-roles-'));
    await writeFile(
      path.join(dir, 'app.yaml'),
      `apiVersion: trellis.dev/v1
kind: Application
metadata:
  name: demo
spec:
  actors:
    - name: hello
      source: ${exampleActor('hello')}
      version: 1.0.0
      replicas: 1
      routes:
        - prefix: /hello
    - name: counter
      source: ${exampleActor('counter')}
      version: 1.0.0
      replicas: 1
      links:
        - provider: keyvalue-nats
          config: { bucket: counters }
      routes:
        - prefix: /counter
  providers:
    - kind: keyvalue-nats
      replicas: 1
`,
    );
  });
  afterAll(async () => {
    if (process.env.DEBUG_SECURITY) {
      console.log(nats.log().split('\n').filter((l) => /Violation|ERR/.test(l)).join('\n'));
      console.log(host.logs.filter((l) => Number(l.level) >= 40 || /controller|reconcil|actor/.test(String(l.msg))).map((l) => JSON.stringify(l).slice(0, 300)).join('\n'));
    }
    await gateway?.[Symbol.asyncDispose]();
    await host?.[Symbol.asyncDispose]();
    await nats?.stop();
  });

  it('roles - the operator applies an app, the host\'s controller places it, the gateway serves it through the host, the provider counts', async () => {
    const applied = await operator('apply', '-f', path.join(dir, 'app.yaml'), '--wait', '--timeout', '120s');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/Deployed/);

    const hello = await waitFor(async () => {
      const res = await fetch(`${gatewayUrl}/hello?name=secure`);
      return res.status === 200 ? res : undefined;
    }, { timeoutMs: 30_000, what: 'hello through the gateway' });
    expect(await hello.text()).toContain('secure');
    const first = await (await fetch(`${gatewayUrl}/counter`, { method: 'POST' })).text();
    const second = await (await fetch(`${gatewayUrl}/counter`, { method: 'POST' })).text();
    expect(Number(second)).toBe(Number(first) + 1);

    // The operator's everyday commands work under the operator role.
    const hosts = await operator('get', 'hosts', '--json');
    expect(hosts.code, hosts.stderr).toBe(0);
    expect((JSON.parse(hosts.stdout) as { id: string }[]).map((h) => h.id)).toEqual([hostId]);
    const invoked = await operator('invoke', 'hello', '--data', 'operator');
    expect(invoked.code, invoked.stderr).toBe(0);
    expect(invoked.stdout).toContain('operator');
    const status = await operator('app', 'status', 'demo', '--json');
    expect(status.code, status.stderr).toBe(0);
    const labelled = await operator('label', 'put', hostId, 'zone=a');
    expect(labelled.code, labelled.stderr).toBe(0);
    for (const args of [['get', 'actors'], ['get', 'inventory', hostId], ['link', 'get', 'counter'], ['http', 'route', 'list'], ['weights', 'set', 'hello', '1.0.0=100'], ['weights', 'get', 'hello'], ['get', 'apps'], ['logs', '--since', '5m'], ['events', '--since', '5m']]) {
      const r = await operator(...args, '--json');
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });

  it('roles - a gateway credential cannot send control commands or write KV', async () => {
    const nc = await connectAs('gateway');
    try {
      const s = buildSubjects(lattice);
      for (const op of ['actorStart', 'hostStop', 'labelPut'] as const) {
        const err = await nc.request(s.control(op, hostId), encode({ lattice }), { timeout: 5000 }).then(() => undefined, (e: unknown) => e);
        expect(fromNatsError(err, 'host').code, op).toBe('TRELLIS_PERMISSION_DENIED');
      }
      // Reading the weights is its job; writing them is not.
      const weights = await openKv(nc, s.buckets.weights).catch((e: Error) => e);
      if (weights instanceof Error) expect(weights.message).toMatch(/permission/i);
      else {
        const put = await weights.put('hello', new TextEncoder().encode('{}')).then(() => undefined, (e: unknown) => e);
        expect(fromNatsError(put, 'kv').code).toBe('TRELLIS_PERMISSION_DENIED');
      }
      const links = await openKv(nc, s.buckets.links).then(() => undefined, (e: unknown) => e);
      expect(String((links as Error)?.message)).toMatch(/permission/i);
    } finally {
      await nc.close();
    }
    // The host is untouched: still up, no label from the gateway.
    const hosts = await operator('get', 'hosts', '--json');
    expect(JSON.parse(hosts.stdout)).toHaveLength(1);
  });

  it('roles - a host credential cannot command other hosts, nor touch another lattice', async () => {
    const nc = await connectAs('host');
    try {
      const s = buildSubjects(lattice);
      const other = buildSubjects(otherLattice);
      const otherHost = nkeys.createServer().getPublicKey();
      for (const subject of [s.control('actorStart', otherHost), s.control('hostStop', hostId), s.control('actorStart'), other.control('hostPing'), other.rpc('hello', '1.0.0')]) {
        const err = await nc.request(subject, encode({ lattice }), { timeout: 5000 }).then(() => undefined, (e: unknown) => e);
        expect(fromNatsError(err, subject).code, subject).toBe('TRELLIS_PERMISSION_DENIED');
      }
      // Listening in on another host's commands, or another lattice, is refused by the server.
      for (const subject of [s.controlForHost(otherHost), other.allEvents(), `_INBOX.${lattice}.operator.>`]) {
        const sub = nc.subscribe(subject);
        const closed = await Promise.race([sub.closed.then(() => 'closed', (e: unknown) => String(e)), new Promise((r) => setTimeout(() => r('open'), 5000))]);
        expect(closed, subject).not.toBe('open');
      }
      const otherKv = await openKv(nc, other.buckets.hosts).then(() => undefined, (e: unknown) => e);
      expect(String((otherKv as Error)?.message)).toMatch(/permission/i);
    } finally {
      await nc.close();
    }
  });

  it('roles - no password appears in any line a participant or the CLI printed', async () => {
    const lines = [...printed, ...host.logs.map((l) => JSON.stringify(l)), ...gateway.logs.map((l) => JSON.stringify(l))].join('\n');
    expect(lines.length).toBeGreaterThan(1000);
    for (const [role, password] of Object.entries(passwords)) expect(lines.includes(password), role).toBe(false);
  });
});
