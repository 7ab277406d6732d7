import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createAccount, createUser, type KeyPair } from 'nkeys.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openLinks } from '../lattice/links/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { customSection, signComponent } from '../lattice/signing/index.ts';
import { openArtifacts } from '../lattice/state/index.ts';
import { bytesRequest, decodeEvent, type LatticeEvent } from '../lattice/wire/index.ts';
import { exampleActor, spawnHost, startNats, TRELLIS_BIN, uniqueLattice, waitFor, type HostProcess, type NatsServer } from './harness/index.ts';

const run = promisify(execFile);
const DAY = 86_400_000;

/** Run the trellis CLI; resolves with its exit code and output (never throws on a non-zero exit). */
async function trellis(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [TRELLIS_BIN, ...args], { timeout: 60_000, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('signed components on real hosts', () => {
  let nats: NatsServer;
  let client: ControlClient;
  let host: HostProcess;
  let dir: string;
  let echo: Uint8Array;
  const lattice = uniqueLattice('sign');
  const events: LatticeEvent[] = [];
  const issuer = createAccount();
  const subject = createUser().getPublicKey();
  let versions = 0;

  const sign = (bytes: Uint8Array, extra: { issuer?: KeyPair; caps?: string[]; nowMs?: number; expiresAtMs?: number; notBeforeMs?: number } = {}) =>
    signComponent(bytes, { issuer: extra.issuer ?? issuer, subject, name: 'echo', caps: extra.caps ?? [], nowMs: extra.nowMs, expiresAtMs: extra.expiresAtMs, notBeforeMs: extra.notBeforeMs }).bytes;

  /** Push bytes and start them as a fresh version on `on`; resolves with the error code (or 'started'). */
  async function startOn(on: HostProcess, bytes: Uint8Array, actor = 'echo', policy?: Record<string, unknown>): Promise<{ result: string; version: string; message?: string }> {
    const { digest } = await (await openArtifacts(client.nc, client.subjects)).push(bytes);
    const version = `1.0.${++versions}`;
    try {
      await client.startActor(on.id, { actor, version, digest, count: 1, ...(policy ? { policy } : {}) });
      return { result: 'started', version };
    } catch (err) {
      return { result: (err as { code?: string }).code ?? String(err), version, message: (err as Error).message };
    }
  }

  /** The actor_start_failed event of a version, with its reason. */
  const failedEvent = (version: string) => waitFor(() => events.find((e) => e.kind === 'actor_start_failed' && e.data.version === version), { what: `actor_start_failed of ${version}` });

  beforeAll(async () => {
    nats = await startNats();
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-signing-'));
    echo = new Uint8Array(await readFile(exampleActor('echo-c')));
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    client.nc.subscribe(client.subjects.allEvents(), { callback: (_e, m) => events.push(decodeEvent(m.data)) });
    await client.nc.flush();
    host = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 500, extraArgs: ['--allowed-issuer', issuer.getPublicKey()] });
  }, 120_000);
  afterAll(async () => {
    await host?.[Symbol.asyncDispose]();
    await client?.close();
    await nats?.stop();
  });

  it('signing - keys gen writes a private seed and refuses to overwrite it; sign and inspect round-trip through the CLI', async () => {
    const seed = path.join(dir, 'issuer.nk');
    const gen = await trellis(['keys', 'gen', '--kind', 'account', '-o', seed, '--json']);
    expect(gen.code).toBe(0);
    const { publicKey, seedFile } = JSON.parse(gen.stdout) as { publicKey: string; seedFile: string };
    expect(publicKey).toMatch(/^A[A-Z2-7]{55}$/);
    expect(seedFile).toBe(seed);
    expect((await stat(seed)).mode & 0o777).toBe(0o600);
    // The seed never appears in what the command prints.
    const seedText = (await readFile(seed, 'utf8')).trim();
    expect(seedText).toMatch(/^SA/);
    expect(gen.stdout + gen.stderr).not.toContain(seedText);
    const again = await trellis(['keys', 'gen', '-o', seed]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('exists; pass --force');
    expect((await readFile(seed, 'utf8')).trim()).toBe(seedText);
    const curve = await trellis(['keys', 'gen', '--kind', 'curve', '-o', path.join(dir, 'lattice.xk'), '--json']);
    expect(JSON.parse(curve.stdout).publicKey).toMatch(/^X/);

    const signed = path.join(dir, 'echo.signed.wasm');
    const signing = await trellis(['sign', exampleActor('echo-c'), '--issuer', seed, '-o', signed, '--name', 'echo', '--expires', '90d', '--caps', 'keyvalue,actor-call', '--json']);
    expect(signing.code, signing.stderr).toBe(0);
    const inspected = await trellis(['inspect', signed, '--json']);
    expect(inspected.code).toBe(0);
    const report = JSON.parse(inspected.stdout);
    expect(report).toMatchObject({ signed: true, verifies: true, signatureValid: true, hashValid: true, claims: { iss: publicKey, name: 'echo', trellis: { caps: ['actor-call', 'keyvalue'] } } });
    expect(report.claims.exp - report.claims.iat).toBe(90 * 86_400);
    // One byte changed: inspect says so and fails.
    const bytes = new Uint8Array(await readFile(signed));
    bytes[20] ^= 0xff;
    await writeFile(path.join(dir, 'tampered.wasm'), bytes);
    const tampered = await trellis(['inspect', path.join(dir, 'tampered.wasm'), '--json']);
    expect(tampered.code).toBe(1);
    expect(JSON.parse(tampered.stdout)).toMatchObject({ verifies: false, hashValid: false, host: { ok: false, code: 'TRELLIS_BAD_SIGNATURE' } });
    expect((await trellis(['inspect', exampleActor('echo-c'), '--json'])).code).toBe(1);
  });

  it('signing - sign -o refuses an existing file without --force; inspect fails for an expired component when issuers are given; a host checks --secrets-key at start', async () => {
    const seed = path.join(dir, 'issuer-b.nk');
    expect((await trellis(['keys', 'gen', '-o', seed])).code).toBe(0);
    const out = path.join(dir, 'exists.wasm');
    await writeFile(out, 'precious');
    const refused = await trellis(['sign', exampleActor('echo-c'), '--issuer', seed, '-o', out]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('exists; pass --force');
    expect(await readFile(out, 'utf8')).toBe('precious');
    expect((await trellis(['sign', exampleActor('echo-c'), '--issuer', seed, '-o', out, '--force'])).code).toBe(0);
    // Valid signature, expired claims: with --allowed-issuer the host verdict decides the exit.
    const expired = path.join(dir, 'expired.wasm');
    await writeFile(expired, sign(echo, { nowMs: Date.now() - 2 * DAY, expiresAtMs: Date.now() - DAY }));
    const inspected = await trellis(['inspect', expired, '--allowed-issuer', issuer.getPublicKey(), '--json']);
    expect(inspected.code).toBe(1);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ verifies: true, host: { ok: false, code: 'TRELLIS_EXPIRED' } });
    const missingKey = await trellis(['host', '--secrets-key', path.join(dir, 'no-such.xk'), '--nats', nats.url, '--lattice', lattice]);
    expect(missingKey.code).not.toBe(0);
    expect(missingKey.stderr).toContain('--secrets-key file');
    expect(missingKey.stderr).toContain('TRELLIS_FILE_UNREADABLE');
  });

  it('signing - a host refuses a malformed --allowed-issuer (flag or env) at start', async () => {
    const flag = await trellis(['host', '--allowed-issuer', 'SAnotapublickey', '--nats', nats.url, '--lattice', lattice]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--allowed-issuer');
    expect(flag.stderr).toContain('TRELLIS_BAD_OPTION');
    const fromEnv = await trellis(['host', '--nats', nats.url, '--lattice', lattice], { TRELLIS_ALLOWED_ISSUERS: `${issuer.getPublicKey()},bogus` });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('"bogus" is not an issuer public key');
  });

  it('signing - a host with an allowed issuer runs what that issuer signed, and it answers', async () => {
    const { result, version } = await startOn(host, sign(echo, { expiresAtMs: Date.now() + 90 * DAY }));
    expect(result).toBe('started');
    await using rpc = await createRpcClient(client.nc, { lattice });
    const answer = await rpc.invoke('echo', bytesRequest('signed hello'), { version });
    expect(new TextDecoder().decode(answer.response.body)).toBe('signed hello');
  });

  it('signing - each refusal has its own code and an actor_start_failed event with the reason', async () => {
    const signed = sign(echo);
    const changed = Uint8Array.from(signed);
    changed[12] ^= 0x01;
    const cases: [string, Uint8Array, string, RegExp][] = [
      ['unsigned', echo, 'TRELLIS_UNSIGNED', /not signed/],
      ['a byte changed', changed, 'TRELLIS_BAD_SIGNATURE', /changed after signing/],
      ['a section added', Uint8Array.from([...signed, ...customSection('extra', Uint8Array.from([1, 2]))]), 'TRELLIS_BAD_SIGNATURE', /added after the claims/],
      ['expired', sign(echo, { nowMs: Date.now() - 2 * DAY, expiresAtMs: Date.now() - DAY }), 'TRELLIS_EXPIRED', /expired at/],
      ['not yet valid', sign(echo, { notBeforeMs: Date.now() + DAY }), 'TRELLIS_NOT_YET_VALID', /not valid before/],
      ['another issuer', sign(echo, { issuer: createAccount() }), 'TRELLIS_UNTRUSTED_ISSUER', /is not an allowed issuer/],
    ];
    for (const [what, bytes, code, reason] of cases) {
      const { result, version, message } = await startOn(host, bytes);
      expect(result, what).toBe(code);
      expect(message, what).toMatch(reason);
      const event = await failedEvent(version);
      expect(event.data, what).toMatchObject({ hostId: host.id, actor: 'echo', version, error: { code } });
      expect((event.data as { error: { message: string } }).error.message, what).toMatch(reason);
    }
    // Nothing refused runs.
    const running = (await client.getInventory(host.id)).actors.map((a) => a.version);
    expect(running.length).toBeGreaterThan(0);
    for (const e of events.filter((x) => x.kind === 'actor_start_failed')) expect(running).not.toContain((e.data as { version: string }).version);
  });

  it('signing - capabilities in the claims bound the policy at start and the links at each call', async () => {
    // allowedHosts needs http-client: refused at start.
    const noCaps = sign(echo);
    const start = await startOn(host, noCaps, 'echo', { allowedHosts: ['example.com'] });
    expect(start.result).toBe('TRELLIS_CAPABILITY_DENIED');
    expect(start.message).toMatch(/allowedHosts \(needs capability http-client\)/);
    expect((await startOn(host, sign(echo, { caps: ['http-client'] }), 'echo', { allowedHosts: ['example.com'] })).result).toBe('started');

    // The counter uses its keyvalue link on every call: without the capability the link is refused.
    const counter = new Uint8Array(await readFile(exampleActor('counter')));
    await client.startProvider(host.id, { provider: 'keyvalue-nats' });
    await (await openLinks(client.nc, client.subjects)).put('counter', 'keyvalue-nats', { bucket: `cap-${lattice}` });
    await using rpc = await createRpcClient(client.nc, { lattice });
    const post = { ...bytesRequest(''), method: 'POST' };
    const without = await startOn(host, sign(counter, { caps: ['http-client'] }), 'counter');
    expect(without.result).toBe('started');
    const denied = await rpc.invoke('counter', post, { version: without.version, deadlineMs: 30_000 }).then((r) => r.response, (err: unknown) => err);
    expect(JSON.stringify(denied)).toContain('TRELLIS_CAPABILITY_DENIED');
    expect(JSON.stringify(denied)).toContain('signed without capability keyvalue');
    const withKv = await startOn(host, sign(counter, { caps: ['keyvalue'] }), 'counter');
    expect(withKv.result).toBe('started');
    const counted = await rpc.invoke('counter', post, { version: withKv.version, deadlineMs: 30_000 });
    expect(counted.response.status).toBe(200);
    expect(Number(new TextDecoder().decode(counted.response.body))).toBeGreaterThanOrEqual(1);
  });

  it('signing - a lattice-wide issuer list set with `trellis issuers` binds hosts without flags, live', async () => {
    await using plain = await spawnHost({ nats: nats.url, lattice: `${lattice}x`, heartbeatMs: 500 });
    await using other = await connectControl({ nats: nats.url, lattice: `${lattice}x`, timeoutMs: 60_000 });
    const push = async (bytes: Uint8Array) => (await openArtifacts(other.nc, other.subjects)).push(bytes);
    const tryStart = async (bytes: Uint8Array, version: string) =>
      other.startActor(plain.id, { actor: 'echo', version, digest: (await push(bytes)).digest, count: 1 }).then(() => 'started', (err: { code?: string }) => err.code);
    // No issuer anywhere: unsigned components run, as on a development lattice.
    expect(await tryStart(echo, '0.0.1')).toBe('started');
    const latticeIssuer = createAccount();
    const add = await trellis(['issuers', 'add', latticeIssuer.getPublicKey(), '--nats', nats.url, '--lattice', `${lattice}x`, '--json']);
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toEqual([latticeIssuer.getPublicKey()]);
    const bad = await trellis(['issuers', 'add', 'not-a-key', '--nats', nats.url, '--lattice', `${lattice}x`]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('TRELLIS_BAD_REQUEST');
    // The host follows the list: the next start is checked against it.
    await waitFor(async () => (await tryStart(echo, `0.1.${++versions}`)) === 'TRELLIS_UNSIGNED', { what: 'unsigned refused after issuers add' });
    expect(await tryStart(sign(echo, { issuer: latticeIssuer }), '0.2.0')).toBe('started');
    expect(await tryStart(sign(echo), '0.3.0')).toBe('TRELLIS_UNTRUSTED_ISSUER');
    const list = await trellis(['issuers', 'list', '--nats', nats.url, '--lattice', `${lattice}x`, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([latticeIssuer.getPublicKey()]);
    // Enforcement is explicit: removing the last issuer needs --force and leaves it on.
    const conn = ['--nats', nats.url, '--lattice', `${lattice}x`];
    const last = await trellis(['issuers', 'remove', latticeIssuer.getPublicKey(), ...conn]);
    expect(last.code).not.toBe(0);
    expect(last.stderr).toContain('--force');
    const forced = await trellis(['issuers', 'remove', latticeIssuer.getPublicKey(), '--force', ...conn]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain('warning: no allowed issuer left');
    await waitFor(async () => (await tryStart(sign(echo, { issuer: latticeIssuer }), `0.4.${++versions}`)) === 'TRELLIS_UNTRUSTED_ISSUER', { what: 'everything refused once the last issuer is removed' });
    expect(await tryStart(echo, `0.4.${++versions}`)).toBe('TRELLIS_UNTRUSTED_ISSUER');
    expect((await trellis(['issuers', 'list', ...conn])).stdout).toContain('enforced with no allowed issuer');
    // Only `issuers disable` lets unsigned components run again.
    expect((await trellis(['issuers', 'disable', ...conn])).code).toBe(0);
    await waitFor(async () => (await tryStart(echo, `0.4.${++versions}`)) === 'started', { what: 'unsigned runs again after issuers disable' });
    // A document deleted while enforced is no way to turn enforcement off: hosts fail closed.
    expect((await trellis(['issuers', 'add', latticeIssuer.getPublicKey(), ...conn])).code).toBe(0);
    await waitFor(async () => (await tryStart(echo, `0.4.${++versions}`)) === 'TRELLIS_UNSIGNED', { what: 'enforced again' });
    const config = await other.nc.jetstream().views.kv(other.subjects.buckets.config);
    await config.delete('security.issuers');
    await waitFor(async () => (await tryStart(sign(echo, { issuer: latticeIssuer }), `0.4.${++versions}`)) === 'TRELLIS_UNTRUSTED_ISSUER', { what: 'refused after the document was deleted' });
    expect(await tryStart(echo, `0.4.${++versions}`)).toBe('TRELLIS_UNTRUSTED_ISSUER');
    // A document that does not decode closes the lattice rather than opening it.
    await config.put('security.issuers', new TextEncoder().encode('{"issuers": 42}'));
    await waitFor(async () => (await tryStart(sign(echo, { issuer: latticeIssuer }), `0.5.${++versions}`)) === 'TRELLIS_UNTRUSTED_ISSUER', { what: 'refused while the issuers document is unreadable' });
    // `issuers list` says so and fails, rather than reporting no issuers.
    const unreadable = await trellis(['issuers', 'list', ...conn]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stdout).toContain('unreadable');
    // `issuers add` repairs it.
    expect((await trellis(['issuers', 'add', latticeIssuer.getPublicKey(), '--nats', nats.url, '--lattice', `${lattice}x`])).code).toBe(0);
    await waitFor(async () => (await tryStart(sign(echo, { issuer: latticeIssuer }), `0.6.${++versions}`)) === 'started', { what: 'runs again once repaired' });
  });

  it('signing - a host with --require-signed and no issuer anywhere refuses every component', async () => {
    await using strict = await spawnHost({ nats: nats.url, lattice: `${lattice}r`, heartbeatMs: 500, extraArgs: ['--require-signed', '--no-controller'] });
    await using other = await connectControl({ nats: nats.url, lattice: `${lattice}r`, timeoutMs: 60_000 });
    for (const [what, bytes] of [['unsigned', echo], ['signed', sign(echo)]] as const) {
      const { digest } = await (await openArtifacts(other.nc, other.subjects)).push(bytes);
      const code = await other.startActor(strict.id, { actor: 'echo', version: `9.0.${++versions}`, digest, count: 1 }).then(() => 'started', (err: { code?: string; message?: string }) => `${err.code}: ${err.message}`);
      expect(code, what).toMatch(/^TRELLIS_UNTRUSTED_ISSUER: signatures are required \(--require-signed\)/);
    }
  });
});
