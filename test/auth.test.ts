/**
 * Every kind of NATS credential on a real nats-server configured for it: user/password, token,
 * nkey, decentralized JWT creds (operator, account and user JWTs made here with @nats-io/jwt,
 * a MEMORY resolver preloaded with the account) and mutual TLS (certificates made here with
 * openssl). Real host processes join with each, the real CLI reads them back; a refused
 * credential ends a participant with TRELLIS_NATS_AUTH instead of a hang, also when the server
 * revokes it while the host runs; no secret appears in anything they print.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { nkeys } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergePermissions, permissionsConf, permissionsJwt, rolePermissions } from '../lattice/security/index.ts';
import { TRELLIS_BIN, spawnHost, uniqueLattice, type HostProcess } from './harness/index.ts';
import { makeTestCerts, startConfiguredNats, type ConfiguredNats, type TestCerts } from './harness/secure-nats.ts';

const exec = promisify(execFile);

/** Run the real CLI with `env`; never throws; everything printed is kept in `printed`. */
async function trellis(printed: string[], env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [TRELLIS_BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    printed.push(stdout, stderr);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    printed.push(e.stdout, e.stderr);
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Everything a host process printed (stdout JSON lines). */
const hostOutput = (host: HostProcess) => host.logs.map((l) => JSON.stringify(l)).join('\n');

/** The hosts `trellis get hosts --json` lists with `env`'s credentials. */
async function listedHosts(printed: string[], env: NodeJS.ProcessEnv, ...args: string[]): Promise<string[]> {
  const r = await trellis(printed, env, 'get', 'hosts', '--json', ...args);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { id: string }[]).map((h) => h.id);
}

function expectNoSecrets(output: string, secrets: Record<string, string>): void {
  for (const [what, value] of Object.entries(secrets)) expect(output.includes(value), what).toBe(false);
}

describe('auth - user/password and token', { timeout: 120_000 }, () => {
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const lattice = uniqueLattice('authpw');
  const printed: string[] = [];
  let nats: ConfiguredNats;
  let host: HostProcess;
  beforeAll(async () => {
    nats = await startConfiguredNats(`authorization { users = [ { user: alice, password: "${password}" } ] }`);
  });
  afterAll(async () => {
    await host?.[Symbol.asyncDispose]();
    await nats?.stop();
  });

  it('auth - a host joins with user/password, the CLI sees it; a wrong password fails fast with TRELLIS_NATS_AUTH', async () => {
    host = await spawnHost({ nats: nats.url, lattice, extraArgs: ['--nats-user', 'alice'], env: { TRELLIS_NATS_PASSWORD: password } });
    expect(await listedHosts(printed, { TRELLIS_NATS_URL: nats.url, TRELLIS_NATS_USER: 'alice', TRELLIS_NATS_PASSWORD: password }, '--lattice', lattice)).toEqual([host.id]);

    const wrong = `wrong-${password}`;
    const cli = await trellis(printed, { TRELLIS_NATS_URL: nats.url, TRELLIS_NATS_USER: 'alice', TRELLIS_NATS_PASSWORD: wrong }, 'get', 'hosts', '--lattice', lattice);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('[TRELLIS_NATS_AUTH]');
    const refused = await trellis(printed, { TRELLIS_NATS_PASSWORD: wrong }, 'host', '--nats', nats.url, '--lattice', lattice, '--nats-user', 'alice');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('[TRELLIS_NATS_AUTH]');
    const none = await trellis(printed, {}, 'gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0');
    expect(none.stderr).toContain('[TRELLIS_NATS_AUTH]');
    expectNoSecrets([...printed, hostOutput(host)].join('\n'), { password, wrong });
  });

  it('auth - credentials revoked while a host runs end it with TRELLIS_NATS_AUTH, no endless reconnects', async () => {
    await nats.reload(`authorization { users = [ { user: alice, password: "changed-${password}" } ] }`);
    const code = await Promise.race([host.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(code).toBe(1);
    const closed = host.logs.find((l) => l.msg === 'NATS connection closed with an error');
    expect(closed?.code).toBe('TRELLIS_NATS_AUTH');
    expectNoSecrets(hostOutput(host), { password });
  });

  it('auth - a token server takes a host and the CLI with the token, from the environment', async () => {
    const token = `tok-${Math.random().toString(36).slice(2)}`;
    await using server = await startConfiguredNats(`authorization { token: "${token}" }`);
    await using tokenHost = await spawnHost({ nats: server.url, lattice, env: { TRELLIS_NATS_TOKEN: token } });
    expect(await listedHosts(printed, { TRELLIS_NATS_URL: server.url, TRELLIS_NATS_TOKEN: token }, '--lattice', lattice)).toEqual([tokenHost.id]);
    const bad = await trellis(printed, { TRELLIS_NATS_URL: server.url }, 'get', 'hosts', '--lattice', lattice, '--nats-token', 'nope');
    expect(bad.stderr).toContain('[TRELLIS_NATS_AUTH]');
    expectNoSecrets([...printed, hostOutput(tokenHost)].join('\n'), { token });
  });
});

describe('auth - nkey and decentralized JWT creds', { timeout: 120_000 }, () => {
  const lattice = uniqueLattice('authnk');
  const printed: string[] = [];
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'auth-keys-'));
  });

  it('auth - nkey users join with their seed file; the inbox prefix is their public key, as the permissions say', async () => {
    const hostUser = nkeys.createUser();
    const opUser = nkeys.createUser();
    const seedFile = path.join(dir, 'host.nk');
    const opFile = path.join(dir, 'op.nk');
    const hostSeed = new TextDecoder().decode(hostUser.getSeed());
    await writeFile(seedFile, hostSeed, { mode: 0o600 });
    await writeFile(opFile, new TextDecoder().decode(opUser.getSeed()), { mode: 0o600 });
    const both = mergePermissions(rolePermissions('host', { lattice, user: hostUser.getPublicKey() }), rolePermissions('controller', { lattice, user: hostUser.getPublicKey() }));
    const op = rolePermissions('operator', { lattice, user: opUser.getPublicKey() });
    await using server = await startConfiguredNats(
      `authorization { users = [ { nkey: ${hostUser.getPublicKey()}, permissions: ${permissionsConf(both)} }, { nkey: ${opUser.getPublicKey()}, permissions: ${permissionsConf(op)} } ] }`,
    );
    await using host = await spawnHost({ nats: server.url, lattice, extraArgs: ['--nats-nkey', seedFile] });
    expect(await listedHosts(printed, { TRELLIS_NATS_URL: server.url, TRELLIS_NATS_NKEY: opFile }, '--lattice', lattice)).toEqual([host.id]);
    // A seed the server does not know is refused.
    const stranger = path.join(dir, 'stranger.nk');
    await writeFile(stranger, new TextDecoder().decode(nkeys.createUser().getSeed()), { mode: 0o600 });
    const refused = await trellis(printed, { TRELLIS_NATS_URL: server.url, TRELLIS_NATS_NKEY: stranger }, 'get', 'hosts', '--lattice', lattice);
    expect(refused.stderr).toContain('[TRELLIS_NATS_AUTH]');
    expectNoSecrets([...printed, hostOutput(host)].join('\n'), { hostSeed });
  });

  it('auth - creds: operator, account (with JetStream) and user JWTs; a host and the CLI join, an unknown account is refused', async () => {
    const operator = nkeys.createOperator();
    const account = nkeys.createAccount();
    const system = nkeys.createAccount();
    // Unlimited, with JetStream: an account JWT's absent limits mean zero connections.
    const jetstream = { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, leaf: -1, wildcards: true, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };
    const operatorJwt = await encodeOperator('trellis-test', operator, { system_account: system.getPublicKey() });
    const accountJwt = await encodeAccount('lattice', account, { limits: jetstream }, { signer: operator });
    const systemJwt = await encodeAccount('SYS', system, {}, { signer: operator });
    const writeCreds = async (name: string, roles: ('host' | 'controller' | 'operator')[], issuer = account) => {
      const user = nkeys.createUser();
      const perms = mergePermissions(...roles.map((role) => rolePermissions(role, { lattice, user: user.getPublicKey() })));
      const jwt = await encodeUser(name, user, issuer, { ...permissionsJwt(perms) });
      const file = path.join(dir, `${name}.creds`);
      const creds = new TextDecoder().decode(fmtCreds(jwt, user));
      await writeFile(file, creds, { mode: 0o600 });
      return { file, creds };
    };
    const hostCreds = await writeCreds('host', ['host', 'controller']);
    const opCreds = await writeCreds('operator', ['operator']);
    const rogue = await writeCreds('rogue', ['operator'], nkeys.createAccount());
    await using server = await startConfiguredNats(
      // A user JWT carrying a role's permissions is larger than the default 4 KiB CONNECT line.
      ['max_control_line: 16KB', `operator: ${operatorJwt}`, `system_account: ${system.getPublicKey()}`, 'resolver: MEMORY', `resolver_preload: { ${account.getPublicKey()}: ${accountJwt}, ${system.getPublicKey()}: ${systemJwt} }`].join('\n'),
    );
    await using host = await spawnHost({ nats: server.url, lattice, extraArgs: ['--nats-creds', hostCreds.file] }).catch((err: Error) => {
      throw new Error(`${err.message}\n${server.log().split('\n').filter((l) => /ERR|WRN/.test(l)).slice(-5).join('\n')}`);
    });
    expect(await listedHosts(printed, { TRELLIS_NATS_URL: server.url, TRELLIS_NATS_CREDS: opCreds.file }, '--lattice', lattice)).toEqual([host.id]);
    const refused = await trellis(printed, { TRELLIS_NATS_URL: server.url, TRELLIS_NATS_CREDS: rogue.file }, 'get', 'hosts', '--lattice', lattice);
    expect(refused.stderr).toContain('[TRELLIS_NATS_AUTH]');
    const seedOf = (creds: string) => /SU[A-Z2-7]{56}/.exec(creds)![0];
    expectNoSecrets([...printed, hostOutput(host)].join('\n'), { hostSeed: seedOf(hostCreds.creds), opSeed: seedOf(opCreds.creds) });
  });
});

describe('auth - mutual TLS', { timeout: 120_000 }, () => {
  const lattice = uniqueLattice('authtls');
  const printed: string[] = [];
  let certs: TestCerts;
  let nats: ConfiguredNats;
  let url: string;
  beforeAll(async () => {
    certs = await makeTestCerts();
    nats = await startConfiguredNats(`tls { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}", ca_file: "${certs.ca}", verify: true, timeout: 2 }`);
    url = `tls://127.0.0.1:${nats.port}`;
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('auth - with the CA and a client certificate a host joins over tls://; without one, or with a stranger\'s, TRELLIS_NATS_AUTH', async () => {
    const tls = { TRELLIS_NATS_TLS_CA: certs.ca, TRELLIS_NATS_TLS_CERT: certs.clientCert, TRELLIS_NATS_TLS_KEY: certs.clientKey };
    await using host = await spawnHost({ nats: url, lattice, extraArgs: ['--tls-ca', certs.ca, '--tls-cert', certs.clientCert, '--tls-key', certs.clientKey] });
    expect(await listedHosts(printed, { TRELLIS_NATS_URL: url, ...tls }, '--lattice', lattice)).toEqual([host.id]);
    for (const env of [{ TRELLIS_NATS_TLS_CA: certs.ca }, { TRELLIS_NATS_TLS_CA: certs.ca, TRELLIS_NATS_TLS_CERT: certs.strangerCert, TRELLIS_NATS_TLS_KEY: certs.strangerKey }, {}]) {
      const r = await trellis(printed, { TRELLIS_NATS_URL: url, ...env }, 'get', 'hosts', '--lattice', lattice);
      expect(r.code, JSON.stringify(env)).toBe(1);
      expect(r.stderr, JSON.stringify(env)).toContain('[TRELLIS_NATS_AUTH]');
    }
    const key = (await readFile(certs.clientKey, 'utf8')).split('\n').filter((l) => l && !l.startsWith('-----'))[0]!;
    expectNoSecrets([...printed, hostOutput(host)].join('\n'), { key });
  });
});
