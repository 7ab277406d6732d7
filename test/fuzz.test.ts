/**
 * Fuzzing the control plane on real parts: a nats-server with one user per party, a real host
 * process running an actor and a keyvalue provider, and a fuzzer ("mallory", its own NATS user)
 * sending at least 10,000 random and mutated messages to every subject the host and its
 * participants listen on: every control operation (addressed to the host, broadcast, unknown),
 * the actor's RPC subject and the provider's subject. Meanwhile a legitimate operator (another
 * user, its own inbox prefix, so its own rate limit) keeps sending commands and invocations,
 * which must all work. Afterwards the host runs, its inventory is unchanged and its actor answers.
 *
 * Deterministic: every message comes from a seeded PRNG per subject (the seed is printed; set
 * TRELLIS_FUZZ_SEED to replay one). Bounded: the subjects are flooded in parallel, each paced by
 * a probe request every 250 messages, which also keeps the server from cutting the host off as
 * a slow consumer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlClient, type ControlClient } from '../lattice/control/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { subjects as buildSubjects, ControlOps, type ControlOp, type Subjects } from '../lattice/subjects/index.ts';
import { bytesRequest, decode, encode, RpcHeaders, type HostInventory } from '../lattice/wire/index.ts';
import { deployExample, natsServerBinary, spawnHost, uniqueLattice, waitFor, type HostProcess } from './harness/index.ts';

const SEED = Number(process.env.TRELLIS_FUZZ_SEED ?? 0x7e1115);
const PER_SUBJECT = Number(process.env.TRELLIS_FUZZ_PER_SUBJECT ?? 10_000);
const PACE_EVERY = 250;

/** mulberry32: small, fast, seeded. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!, bytes: (n: number) => Uint8Array.from({ length: n }, () => int(256)) };
}
type Rng = ReturnType<typeof prng>;

// Random strings always hold a character no name (bucket, actor, key) may hold, so a mutation
// never turns a harmless request into one that creates something by chance.
const CHARS = 'aZ9 .*>é\u0000\u{1f600}"\\/_-';
const randomString = (r: Rng, max = 40) => `${r.pick(['.', ' ', '*', '>'])}${Array.from({ length: r.int(max) }, () => r.pick([...CHARS])).join('')}`;

/** A random msgpack-able value: every type, small nesting. */
function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 3 ? 7 : 9)) {
    case 0: return null;
    case 1: return r.next() < 0.5;
    case 2: return r.pick([0, -1, 1, 127, 128, 255, 256, 65_535, 65_536, -129, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53) + 1]);
    case 3: return r.pick([0.5, -1e308, Number.NaN, Number.POSITIVE_INFINITY, 1e-300]);
    case 4: return randomString(r);
    case 5: return r.bytes(r.int(64));
    case 6: return r.int(1_000_000) - 500_000;
    case 7: return Array.from({ length: r.int(6) }, () => randomValue(r, depth + 1));
    default: return Object.fromEntries(Array.from({ length: r.int(6) }, () => [randomString(r, 12), randomValue(r, depth + 1)]));
  }
}

/** msgpack bytes the encoder would never write: hostile headers and frames. */
function hostileFrame(r: Rng): Uint8Array {
  switch (r.int(8)) {
    case 0: return new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x00]); // a list announcing 4 billion items
    case 1: return new Uint8Array([0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x61]); // a map announcing 2 billion entries
    case 2: return new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xf0, 0x61]); // a 4 GB string, 1 byte of it
    case 3: return new Uint8Array([0xc6, 0x7f, 0xff, 0xff, 0xff]); // a 2 GB binary, none of it
    case 4: return new Uint8Array(r.int(3_000) + 1).fill(0x91); // deep nesting, unterminated
    case 5: return new Uint8Array([0xd4, r.int(127), 0x00]); // an extension type (records, errors, regexps...)
    case 6: return new Uint8Array([0x81, 0x81, 0xa1, 0x61, 0x01, 0x01]); // a map as a map key
    default: return new Uint8Array([0xc1]);
  }
}

/** A large message (rare: at most a few per thousand, they cost bandwidth). */
function largeFrame(r: Rng, base: Record<string, unknown>): Uint8Array {
  switch (r.int(4)) {
    case 0: {
      const deep = new Uint8Array(100_000).fill(0x91); // 100,000 levels: msgpackr alone overflows its stack
      deep[deep.length - 1] = 0xc0;
      return deep;
    }
    case 1: return encode({ ...base, [r.pick(Object.keys(base))]: new Array(70_000).fill(0) }); // a huge list
    case 2: return encode({ ...base, [r.pick(Object.keys(base))]: 'x'.repeat(r.pick([70_000, 300_000])) }); // an oversize string
    default: return r.bytes(200_000);
  }
}

/** A valid request turned into something else: one field changed, dropped or added, or its bytes damaged. */
function mutate(r: Rng, base: Record<string, unknown>): Uint8Array {
  const keys = Object.keys(base);
  const value: Record<string, unknown> = structuredClone(base);
  switch (r.int(7)) {
    case 0: value[r.pick(keys)] = randomValue(r); return encode(value);
    case 1: delete value[r.pick(keys)]; return encode(value);
    case 2: value[randomString(r, 10)] = randomValue(r); return encode(value);
    case 3: value[r.pick(keys)] = 'y'.repeat(r.pick([200, 5_000, 20_000])); return encode(value);
    case 4: value[r.pick(keys)] = Array.from({ length: r.pick([10, 2_000, 5_000]) }, (_, i) => i); return encode(value);
    case 5: {
      const bytes = encode(base);
      for (let i = 0; i <= r.int(4); i++) bytes[r.int(bytes.length)] = r.int(256);
      return bytes;
    }
    default: return encode([value, value]);
  }
}

/** One fuzz message for a subject whose valid request is `base`. */
function fuzzMessage(r: Rng, base: Record<string, unknown>): Uint8Array {
  if (r.next() < 0.004) return largeFrame(r, base);
  const valid = encode(base);
  switch (r.int(11)) {
    case 6: return valid; // valid commands, more than the rate limit admits
    case 0: return r.bytes(r.int(300));
    case 1: return encode(randomValue(r)); // valid msgpack, wrong types
    case 2: return valid.subarray(0, r.int(valid.length)); // truncated
    case 3: return new Uint8Array([...valid, ...r.bytes(1 + r.int(8))]); // trailing bytes
    case 4: return hostileFrame(r);
    case 5: return new Uint8Array(0);
    default: return mutate(r, base);
  }
}

/** Headers a caller should not send: wrong values of ours, junk of anyone's. */
function fuzzHeaders(r: Rng): MsgHdrs | undefined {
  if (r.next() < 0.7) return undefined;
  const h = natsHeaders();
  const junk = () => r.pick(['', 'NaN', '-1', '0', '1e309', '9'.repeat(300), randomString(r).replace(/[\r\n\u0000]/g, '?'), String(Date.now() - 1000), String(Date.now() + 86_400_000)]);
  for (let i = 0; i <= r.int(3); i++) h.set(r.pick([RpcHeaders.deadline, RpcHeaders.attemptExpires, RpcHeaders.invocationId, RpcHeaders.caller, RpcHeaders.traceparent, 'trellis-host', 'x-junk']), junk());
  return h;
}

/** nats-server with one user per party; each may subscribe only under its own reply-inbox prefix. */
async function startAuthServer(lattice: string, subjects: Subjects): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-fuzz-'));
  const inbox = (user: string) => `${subjects.inboxPrefix(user)}.>`;
  // The host runs with every permission (roles are another part of this issue): it connects
  // without credentials and is bound to the `host` user.
  const conf = `
listen: "127.0.0.1:-1"
ping_interval: "2s"
jetstream { store_dir: "${dir}/js" }
no_auth_user: host
authorization {
  users = [
    { user: host, password: host-secret, permissions: { publish: ">", subscribe: ">" } }
    { user: operator, password: operator-secret, permissions: { publish: ">", subscribe: ["${inbox('operator')}", "${subjects.allEvents()}", "${subjects.allBeats()}"] } }
    { user: mallory, password: mallory-secret, permissions: { publish: ">", subscribe: ["${inbox('mallory')}"] } }
    { user: pacer, password: pacer-secret, permissions: { publish: ">", subscribe: ["${inbox('pacer')}"] } }
    { user: flooder, password: flooder-secret, permissions: { publish: ">", subscribe: ["${inbox('flooder')}"] } }
  ]
}
`;
  await writeFile(`${dir}/server.conf`, conf);
  const child: ChildProcess = spawn(natsServerBinary(), ['-c', `${dir}/server.conf`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('nats-server did not start in 20 s')), 20_000);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      const m = /Listening for client connections on (\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(`nats://${m[1]}`);
      }
    });
    child.once('exit', (code) => reject(new Error(`nats-server exited with ${code}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('fuzzed control plane', () => {
  const lattice = uniqueLattice('fz');
  const subjects = buildSubjects(lattice);
  let server: Awaited<ReturnType<typeof startAuthServer>>;
  let host: HostProcess;
  let operatorNc: NatsConnection;
  let mallory: NatsConnection;
  /** Paces the flood with probe requests: its own user, so it waits behind none of mallory's commands. */
  let pacer: NatsConnection;
  let operator: ControlClient;

  beforeAll(async () => {
    server = await startAuthServer(lattice, subjects);
    host = await spawnHost({ nats: server.url, lattice, extraArgs: ['--log-level', 'info', '--no-controller'] });
    operatorNc = await connect({ servers: server.url, user: 'operator', pass: 'operator-secret', inboxPrefix: subjects.inboxPrefix('operator'), name: 'operator' });
    mallory = await connect({ servers: server.url, user: 'mallory', pass: 'mallory-secret', inboxPrefix: subjects.inboxPrefix('mallory'), name: 'mallory' });
    pacer = await connect({ servers: server.url, user: 'pacer', pass: 'pacer-secret', inboxPrefix: subjects.inboxPrefix('pacer'), name: 'pacer' });
    // Generous time-outs: the machine running this test may be busy; failures, not slowness, fail it.
    operator = createControlClient(operatorNc, { lattice, timeoutMs: 20_000 });
  }, 120_000);

  afterAll(async () => {
    await operator?.close();
    await mallory?.close();
    await pacer?.close();
    await operatorNc?.close();
    await host?.[Symbol.asyncDispose]();
    await server?.stop();
  });

  it('fuzz - a user flooding valid commands is refused with TRELLIS_RATE_LIMITED and a retry hint; another user is served', async () => {
    await using flooder = { nc: await connect({ servers: server.url, user: 'flooder', pass: 'flooder-secret', inboxPrefix: subjects.inboxPrefix('flooder') }), async [Symbol.asyncDispose]() { await this.nc.close(); } };
    const body = encode({ lattice });
    // Far more than the burst (200) at once, every one a valid, cheap command.
    const answers = await Promise.all(Array.from({ length: 600 }, () => flooder.nc.request(subjects.control('hostInventory', host.id), body, { timeout: 60_000 }).then((m) => decode<{ ok: boolean; error?: { code: string; retryAfterMs?: number } }>(m.data))));
    const refused = answers.filter((a) => !a.ok);
    expect(answers.filter((a) => a.ok).length).toBeGreaterThanOrEqual(200);
    expect(refused.length).toBeGreaterThan(0);
    for (const a of refused) {
      expect(a.error!.code).toBe('TRELLIS_RATE_LIMITED');
      expect(a.error!.retryAfterMs).toBeGreaterThan(0);
    }
    // The operator's own bucket is untouched: five commands right after, all answered.
    for (let i = 0; i < 5; i++) expect((await operator.getInventory(host.id)).id).toBe(host.id);
    // And the refusal tells the client library when to come back (TrellisError.retryAfterMs).
    const client = createControlClient(flooder.nc, { lattice, timeoutMs: 60_000 });
    const errors = (await Promise.all(Array.from({ length: 300 }, () => client.getInventory(host.id).then(() => undefined, (e: unknown) => e)))).filter(Boolean);
    expect(errors.length).toBeGreaterThan(0);
    for (const err of errors) expect(err).toMatchObject({ code: 'TRELLIS_RATE_LIMITED', retryAfterMs: expect.any(Number) });
  }, 120_000);

  it('fuzz - 10,000 hostile messages per subject leave the host running, its inventory unchanged, its actor answering, and the operator served', async () => {
    console.log(`fuzz seed ${SEED} (TRELLIS_FUZZ_SEED=${SEED} replays it)`);
    const stage = (what: string) => process.env.TRELLIS_FUZZ_DEBUG && console.log(`fuzz: ${what}`);
    await deployExample(operator, 'echo-c', [host.id], { actor: 'echo' });
    stage('deployed');
    await operator.startProvider(host.id, { provider: 'keyvalue-nats' });
    stage('provider started');
    await waitFor(async () => (await operator.getInventory(host.id)).providers.find((p) => p.health === 'ok'), { timeoutMs: 30_000, what: 'the keyvalue provider' });
    await using rpc = await createRpcClient(operatorNc, { lattice });
    stage('rpc client');
    expect(new TextDecoder().decode((await rpc.invoke('echo', bytesRequest('before'))).response.body)).toBe('before');
    const before = await operator.getInventory(host.id);

    // What each subject's valid request looks like: harmless ones (a ghost actor, a wrong lattice
    // for the commands that would change the host), so whatever a mutation leaves valid does no harm.
    const ghost = { actor: 'ghost', version: '1.0.0' };
    const bases: Record<ControlOp, Record<string, unknown>> = {
      hostPing: { lattice },
      hostInventory: { lattice },
      hostStop: { lattice: `${lattice}-other` },
      labelPut: { lattice: `${lattice}-other`, key: 'fuzz', value: 'x' },
      labelDel: { lattice, key: 'fuzz-absent' },
      actorStart: { lattice, ...ghost, digest: `sha256:${'0'.repeat(64)}`, count: 1 },
      actorScale: { lattice, ...ghost, count: 2 },
      actorStop: { lattice, actor: 'ghost' },
      providerStart: { lattice, provider: 'ghost-provider' },
      providerStop: { lattice, provider: 'ghost-provider' },
    };
    const invocation = { method: 'CALL', path: '/', query: '', headers: [['a', 'b']], body: new TextEncoder().encode('fuzz') };
    const providerRequest = { actor: 'fuzz', version: '1.0.0', op: 'exists', config: { bucket: 'fuzzbkt' }, args: ['k'], invocation: { id: 'fz', seq: 1 } };
    const ping = () => pacer.request(subjects.control('hostPing', host.id), encode({ lattice }), { timeout: 60_000 });
    const targets: { subject: string; base: Record<string, unknown>; probe: () => Promise<unknown> }[] = [
      ...(Object.keys(ControlOps) as ControlOp[]).map((op) => ({ subject: subjects.control(op, host.id), base: bases[op], probe: ping })),
      { subject: subjects.control('hostPing'), base: bases.hostPing, probe: ping },
      { subject: subjects.controlForHost(host.id).replace('*.*', 'bogus.verb'), base: bases.hostPing, probe: ping },
      { subject: subjects.rpc('echo', '1.0.0'), base: invocation, probe: () => pacer.request(subjects.rpc('echo', '1.0.0'), encode(invocation), { timeout: 60_000 }) },
      { subject: subjects.provider('keyvalue-nats'), base: providerRequest, probe: () => pacer.request(subjects.provider('keyvalue-nats'), encode(providerRequest), { timeout: 60_000 }) },
    ];

    // Every answer mallory can hear, by code: none may be TRELLIS_INTERNAL (a handler that saw a
    // half-parsed message, or crashed on one).
    const codes = new Map<string, number>();
    const replyPrefix = `${subjects.inboxPrefix('mallory')}.fuzz`;
    const replies = mallory.subscribe(`${replyPrefix}.>`, {
      callback: (_err, msg) => {
        if (msg.data.length === 0) return; // a taken or progress reply
        let code = 'undecodable';
        try {
          const reply = decode<{ ok: boolean; error?: { code: string } }>(msg.data);
          code = reply.ok ? 'ok' : (reply.error?.code ?? 'no code');
        } catch {}
        codes.set(code, (codes.get(code) ?? 0) + 1);
      },
    });
    const replyTo = (r: Rng, i: number) => {
      const x = r.next();
      if (x < 0.7) return `${replyPrefix}.${i}`;
      if (x < 0.8) return undefined;
      // Users that do not exist (fewer than the slots they could take: see rate-limit.ts).
      if (x < 0.9) return `${subjects.inboxPrefix(`madeup${r.int(16)}`)}.x`;
      return `_INBOX.nowhere.${r.int(1_000_000)}`;
    };

    // The operator, meanwhile: inventory, a label put and deleted, an invocation, over and over.
    let flooding = true;
    const served = { rounds: 0, maxMs: 0, steps: {} as Record<string, number> };
    const failures: string[] = [];
    const operatorLoop = (async () => {
      while (flooding) {
        const t0 = performance.now();
        const step = (name: string, t: number) => { served.steps[name] = Math.max(served.steps[name] ?? 0, Math.round(performance.now() - t)); };
        try {
          let t = performance.now();
          const inv = await operator.getInventory(host.id);
          step('inventory', t);
          if (inv.id !== host.id) failures.push(`inventory of ${inv.id}`);
          t = performance.now();
          await operator.putLabel(host.id, 'operator-check', String(served.rounds));
          await operator.deleteLabel(host.id, 'operator-check');
          step('labels', t);
          t = performance.now();
          const echoed = await rpc.invoke('echo', bytesRequest(`op-${served.rounds}`), { deadlineMs: 60_000 });
          step('invoke', t);
          if (new TextDecoder().decode(echoed.response.body) !== `op-${served.rounds}`) failures.push('wrong echo');
          served.rounds++;
        } catch (err) {
          failures.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
        }
        served.maxMs = Math.max(served.maxMs, performance.now() - t0);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const started = performance.now();
    let sent = 0;
    await Promise.all(
      targets.map(async ({ subject, base, probe }, index) => {
        const r = prng(SEED + index * 7919);
        for (let i = 0; i < PER_SUBJECT; i++) {
          const headers = fuzzHeaders(r);
          const reply = replyTo(r, i);
          mallory.publish(subject, fuzzMessage(r, base), { ...(reply ? { reply } : {}), ...(headers ? { headers } : {}) });
          sent++;
          // The probe's answer comes after the target has read everything sent before it (one
          // server, mallory's messages first): the flood goes as fast as the target consumes,
          // never buffering without bound.
          if ((i + 1) % 2000 === 0) stage(`${subject}: ${i + 1}`);
          if ((i + 1) % PACE_EVERY === 0) await probe().catch((err: unknown) => failures.push(`probe on ${subject}: ${(err as Error).message}`));
        }
        await probe();
      }),
    );
    flooding = false;
    await operatorLoop;
    await mallory.flush();
    replies.unsubscribe();
    const seconds = (performance.now() - started) / 1000;
    console.log(`fuzz: ${sent} messages on ${targets.length} subjects in ${seconds.toFixed(1)} s; operator rounds ${served.rounds} (slowest ${served.maxMs.toFixed(0)} ms, by step ${JSON.stringify(served.steps)}); replies ${JSON.stringify(Object.fromEntries(codes))}`);

    expect(sent).toBe(PER_SUBJECT * targets.length);
    expect(failures).toEqual([]);
    expect(served.rounds).toBeGreaterThan(0);
    expect(codes.get('TRELLIS_INTERNAL') ?? 0).toBe(0);
    expect(codes.get('undecodable') ?? 0).toBe(0);
    // Every kind of refusal was exercised, and so was the rate limit on mallory's valid commands.
    for (const code of ['TRELLIS_BAD_REQUEST', 'TRELLIS_PAYLOAD_TOO_LARGE', 'TRELLIS_UNKNOWN_COMMAND', 'TRELLIS_WRONG_LATTICE', 'TRELLIS_NOT_FOUND', 'TRELLIS_RATE_LIMITED']) expect(codes.get(code) ?? 0, code).toBeGreaterThan(0);

    // The host survived, unchanged: same process, same run, same actors, providers and labels.
    expect(host.process.exitCode).toBeNull();
    const after = await operator.getInventory(host.id);
    const shape = (inv: HostInventory) => ({
      id: inv.id,
      startedAt: inv.startedAt,
      labels: inv.labels,
      actors: inv.actors.map((a) => [a.name, a.version, a.digest, a.instances]),
      providers: inv.providers.map((p) => [p.name, p.health, p.restarts]),
    });
    expect(shape(after)).toEqual(shape(before));
    expect(new TextDecoder().decode((await rpc.invoke('echo', bytesRequest('after'))).response.body)).toBe('after');
    expect(host.logs.filter((l) => l.level === 50 || l.level === 60).map((l) => l.msg)).toEqual([]);
  }, 300_000);
});
