import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createCurve } from 'nkeys.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openLinks } from '../lattice/links/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { decode, decodeEvent, encode, type ActorRequest, type LatticeEvent, type ProviderReply, type ProviderRequest } from '../lattice/wire/index.ts';
import { deployExample, spawnHost, startNats, TRELLIS_BIN, uniqueLattice, type HostProcess, type NatsServer } from './harness/index.ts';

const run = promisify(execFile);

/** Run the trellis CLI; resolves with its exit code and output. */
async function trellis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [TRELLIS_BIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('sealed link secrets on real processes', () => {
  let nats: NatsServer;
  let client: ControlClient;
  let host: HostProcess;
  let server: http.Server;
  let upstream: string;
  let keyFile: string;
  let dir: string;
  const lattice = uniqueLattice('sec');
  const events: LatticeEvent[] = [];
  /** Everything any process printed (CLI runs, the host and the providers it started). */
  const outputs: string[] = [];
  /** What the upstream saw, per request. */
  const seen: { authorization?: string; path?: string }[] = [];
  // Random per run, so no fixed string in the code could make a search for it pass by accident.
  const PLAIN = `tok-${randomBytes(12).toString('hex')}`;
  const connection = () => ['--nats', nats.url, '--lattice', lattice];
  const cli = async (args: string[]) => {
    const r = await trellis(args);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const fetchVia = (actor: string) => {
    const request: ActorRequest = { method: 'GET', path: '/http', query: `url=${encodeURIComponent(`${upstream}/${actor}`)}`, headers: [], body: new Uint8Array() };
    return createRpcClient(client.nc, { lattice }).then(async (rpc) => {
      try {
        return await rpc.invoke(actor, request, { deadlineMs: 30_000 });
      } finally {
        await rpc.close();
      }
    });
  };

  beforeAll(async () => {
    nats = await startNats();
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-secrets-'));
    server = http.createServer((req, res) => {
      seen.push({ authorization: req.headers.authorization, path: req.url });
      // A hash, not the value: the reply travels back through the actor and into outputs.
      res.end(`got ${createHash('sha256').update(req.headers.authorization ?? '').digest('hex')}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    client.nc.subscribe(client.subjects.allEvents(), { callback: (_e, m) => events.push(decodeEvent(m.data)) });
    await client.nc.flush();
    keyFile = path.join(dir, 'lattice.xk');
    const gen = await cli(['keys', 'gen', '--kind', 'curve', '-o', keyFile, '--json']);
    expect(gen.code, gen.stderr).toBe(0);
    const set = await cli(['secrets', 'key', 'set', JSON.parse(gen.stdout).publicKey, ...connection()]);
    expect(set.code, set.stderr).toBe(0);
    // The host hands the key file (its path, not the seed) to the providers it starts.
    host = await spawnHost({ nats: nats.url, lattice, heartbeatMs: 500, extraArgs: ['--secrets-key', keyFile] });
    host.process.stderr!.on('data', (d: Buffer) => outputs.push(d.toString()));
    await client.startProvider(host.id, { provider: 'http-client' });
    for (const actor of ['fetcher', 'thief']) await deployExample(client, 'hostile-js', [host.id], { actor, policy: { allowedHosts: [new URL(upstream).host] } });
  }, 180_000);
  afterAll(async () => {
    await host?.[Symbol.asyncDispose]();
    await client?.close();
    await nats?.stop();
    server?.close();
  });

  it('secrets - link put seals the value: the KV bucket holds no plaintext and link get shows ***', async () => {
    // A malformed secret flag is refused without echoing it (the output check below covers this too).
    const malformed = await cli(['link', 'put', 'fetcher', 'http-client', '--secret', PLAIN, ...connection()]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('--secret number 1 is not name=value');
    // http-client sends its secrets over the network: each must name where it may go.
    const unbound = await cli(['link', 'put', 'fetcher', 'http-client', '--secret', `header.authorization=Bearer ${PLAIN}`, ...connection()]);
    expect(unbound.code).toBe(2);
    expect(unbound.stderr).toContain('--secret-host');
    const put = await cli(['link', 'put', 'fetcher', 'http-client', '--secret', `header.authorization=Bearer ${PLAIN}`, '--secret-host', new URL(upstream).host, 'mode=test', ...connection(), '--json']);
    expect(put.code, put.stderr).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ actor: 'fetcher', config: { mode: 'test' }, secrets: { 'header.authorization': '***' } });
    // What anyone who may read the bucket reads: ciphertext only.
    const kv = await client.nc.jetstream().views.kv(client.subjects.buckets.links);
    const raw = new TextDecoder().decode((await kv.get('fetcher.http-client'))!.value);
    expect(raw).toContain('sealed.v1.');
    expect(raw).not.toContain(PLAIN);
    const get = await cli(['link', 'get', 'fetcher', ...connection(), '--json']);
    expect(JSON.parse(get.stdout)).toEqual([expect.objectContaining({ config: { mode: 'test' }, secrets: { 'header.authorization': '***' } })]);
    const table = await cli(['link', 'get', ...connection()]);
    expect(table.stdout).toContain('header.authorization=***');
  });

  it('secrets - the provider opens the secret and uses it: the upstream gets the plaintext header', async () => {
    const answer = await fetchVia('fetcher');
    expect(answer.response.status).toBe(200);
    const expected = createHash('sha256').update(`Bearer ${PLAIN}`).digest('hex');
    expect(new TextDecoder().decode(answer.response.body)).toBe(`got ${expected}`);
    expect(seen.find((s) => s.path === '/fetcher')?.authorization).toBe(`Bearer ${PLAIN}`);
  });

  it('secrets - a sealed value copied into another actor\'s link does not open there', async () => {
    const sealed = (await (await openLinks(client.nc, client.subjects)).get('fetcher', 'http-client'))!.secrets!['header.authorization']!;
    await (await openLinks(client.nc, client.subjects)).put('thief', 'http-client', {}, { 'header.authorization': sealed });
    const answer = await fetchVia('thief').then((r) => r.response, (err: unknown) => err);
    expect(JSON.stringify(answer)).toContain('TRELLIS_SECRET_UNSEALABLE');
    expect(seen.find((s) => s.path === '/thief')).toBeUndefined();
  });

  it('secrets - a forged provider request cannot send a secret anywhere but where it was sealed for', async () => {
    // Any host may publish provider requests and name any actor and any allowedHosts: the
    // attacker copies the victim's sealed value from the links bucket and names its own server.
    const stolen: (string | undefined)[] = [];
    const evil = http.createServer((req, res) => {
      stolen.push(req.headers.authorization);
      res.end('thanks');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const evilHost = `127.0.0.1:${(evil.address() as AddressInfo).port}`;
      const link = (await (await openLinks(client.nc, client.subjects)).get('fetcher', 'http-client'))!;
      const forged: ProviderRequest = { actor: 'fetcher', op: 'send', config: {}, secrets: link.secrets, allowedHosts: [evilHost], args: [{ method: 'GET', url: `http://${evilHost}/`, headers: [], body: new Uint8Array() }] };
      const msg = await client.nc.request(client.subjects.provider('http-client'), encode(forged), { timeout: 10_000 });
      const reply = decode<ProviderReply>(msg.data, 'reply');
      expect(reply).toMatchObject({ ok: false, error: { code: 'TRELLIS_SANDBOX_VIOLATION' } });
      expect(JSON.stringify(reply)).toContain(`may be sent only to ${new URL(upstream).host}`);
      expect(stolen).toEqual([]);
    } finally {
      evil.close();
    }
  });

  it('secrets - no output of any process, no event and no inventory holds the plaintext', async () => {
    outputs.push(JSON.stringify(await client.getInventory(host.id)));
    outputs.push(JSON.stringify(events));
    outputs.push(JSON.stringify(host.logs));
    // The host and its provider logged at debug level throughout, so there was every chance.
    expect(host.logs.length).toBeGreaterThan(5);
    expect(events.length).toBeGreaterThan(0);
    const everything = outputs.join('\n');
    expect(everything).toContain('***');
    expect(everything).not.toContain(PLAIN);
  });

  it('secrets - put without a lattice key to seal to fails before anything is stored', async () => {
    const elsewhere = ['--nats', nats.url, '--lattice', `${lattice}nokey`];
    const file = path.join(dir, 'secret.txt');
    await writeFile(file, `${PLAIN}\n`);
    const put = await cli(['link', 'put', 'fetcher', 'http-client', '--secret-file', `token=${file}`, '--secret-host', 'api.example.com', ...elsewhere]);
    expect(put.code).not.toBe(0);
    expect(put.stderr).toContain('no secrets key to seal to');
    const get = await cli(['link', 'get', ...elsewhere, '--json']);
    expect(JSON.parse(get.stdout)).toEqual([]);
  });

  it('secrets - link put seals only to the key given with --recipient, says which, and refuses a changed lattice key unconfirmed', async () => {
    const current = (await cli(['secrets', 'key', 'get', ...connection(), '--json'])).stdout;
    const key = JSON.parse(current).publicKey as string;
    const args = ['link', 'put', 'fetcher', 'http-client', '--secret', `header.authorization=Bearer ${PLAIN}`, '--secret-host', new URL(upstream).host, ...connection()];
    const other = createCurve().getPublicKey();
    const wrong = await cli([...args, '--recipient', other]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain(`not the --recipient ${other}`);
    const right = await cli([...args, '--recipient', key]);
    expect(right.code, right.stderr).toBe(0);
    expect(right.stderr).toContain(`sealed to lattice secrets key ${key}`);
    // Someone who may write the config bucket swaps the key: the next put notices.
    expect((await cli(['secrets', 'key', 'set', other, ...connection()])).code).toBe(0);
    const swapped = await cli(args);
    expect(swapped.code).not.toBe(0);
    expect(swapped.stderr).toContain(`changed since this link's secrets were sealed (to ${key}; now ${other})`);
    expect((await cli([...args, '--recipient', other])).code).toBe(0);
  });

  it('secrets - a put without --secret keeps the link\'s secrets; --drop-secret removes one', async () => {
    const links = await openLinks(client.nc, client.subjects);
    const before = (await links.get('fetcher', 'http-client'))!.secrets!;
    expect(Object.keys(before)).toEqual(['header.authorization']);
    const put = await cli(['link', 'put', 'fetcher', 'http-client', 'mode=other', ...connection()]);
    expect(put.code, put.stderr).toBe(0);
    const kept = (await links.get('fetcher', 'http-client'))!;
    expect(kept.config).toEqual({ mode: 'other' });
    expect(kept.secrets).toEqual(before);
    const missing = await cli(['link', 'put', 'fetcher', 'http-client', '--drop-secret', 'nope', ...connection()]);
    expect(missing.stderr).toContain('has no secret nope');
    expect((await cli(['link', 'put', 'fetcher', 'http-client', '--drop-secret', 'header.authorization', ...connection()])).code).toBe(0);
    expect((await links.get('fetcher', 'http-client'))!.secrets).toBeUndefined();
  });
});
