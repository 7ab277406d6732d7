import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExampleActors } from '../actors/index.ts';
import { createRuntime, type ActorRuntime, type CapabilityCall, type KeyValueCapability } from '../host/runtime/index.ts';
import { bytesRequest, type ActorRequest } from '../lattice/wire/index.ts';

const decoder = new TextDecoder();
const text = (b: Uint8Array) => decoder.decode(b);
/** Shared by the runtime suites so a JS component is transpiled once per machine, not per file. */
const sharedCache = join(tmpdir(), 'trellis-runtime-test-cache');

function httpRequest(method: string, path: string, query = '', body = ''): ActorRequest {
  return { method, path, query, headers: [['host', 'example.test'], ['x-test', 'yes']], body: new TextEncoder().encode(body) };
}

/** A real in-process key-value store handed to the runtime as its capability. */
function memoryKeyValue(): KeyValueCapability {
  const data = new Map<string, Uint8Array>();
  const k = (call: CapabilityCall, key: string) => `${call.actor}/${key}`;
  return {
    get: async (a, key) => data.get(k(a, key)),
    set: async (a, key, v) => void data.set(k(a, key), v),
    delete: async (a, key) => void data.delete(k(a, key)),
    exists: async (a, key) => data.has(k(a, key)),
    keys: async (a, prefix) => [...data.keys()].filter((x) => x.startsWith(k(a, prefix))).map((x) => x.slice(a.actor.length + 1)),
    increment: async (a, key, delta) => {
      const next = BigInt(text(data.get(k(a, key)) ?? new TextEncoder().encode('0'))) + delta;
      data.set(k(a, key), new TextEncoder().encode(String(next)));
      return next;
    },
  };
}

let paths: Awaited<ReturnType<typeof buildExampleActors>>;
let runtime: ActorRuntime;

beforeAll(async () => {
  paths = await buildExampleActors();
  runtime = await createRuntime({ cacheDir: sharedCache, capabilities: { keyvalue: memoryKeyValue() } });
});
afterAll(async () => {
  await runtime?.close();
});

describe('runtime', () => {
  it('runtime - trellis:actor JS component answers through the handler', async () => {
    const loaded = await runtime.load({ name: 'hello', path: paths.hello });
    expect(loaded.world).toBe('trellis:actor');
    expect(loaded.digest).toMatch(/^[0-9a-f]{64}$/);
    const r = await runtime.invoke('hello', bytesRequest('trellis'));
    expect(r.status).toBe(200);
    expect(text(r.body)).toBe('hello, trellis');
    const q = await runtime.invoke('hello', { ...bytesRequest(''), query: 'name=ada' });
    expect(text(q.body)).toBe('hello, ada');
    const s = runtime.stats('hello');
    expect(s.warmCalls + s.coldStarts).toBe(2);
    expect(s.instances).toBeGreaterThanOrEqual(1);
  });

  it('runtime - C actor echoes its body', async () => {
    await runtime.load({ name: 'echo', path: paths['echo-c'] });
    const r = await runtime.invoke('echo', bytesRequest('ping 123'));
    expect(r.status).toBe(200);
    expect(text(r.body)).toBe('ping 123');
  });

  it('runtime - keyvalue capability backs the counter actor, unlinked actors fail with TRELLIS_NOT_LINKED', async () => {
    await runtime.load({ name: 'counter', path: paths.counter });
    const post = httpRequest('POST', '/', 'key=visits');
    expect(text((await runtime.invoke('counter', post)).body)).toBe('1');
    expect(text((await runtime.invoke('counter', post)).body)).toBe('2');
    expect(text((await runtime.invoke('counter', httpRequest('GET', '/', 'key=visits'))).body)).toBe('2');

    await using bare = await createRuntime({ cacheDir: sharedCache });
    await bare.load({ name: 'counter', path: paths.counter });
    await expect(bare.invoke('counter', post)).rejects.toMatchObject({ code: 'TRELLIS_ACTOR_ERROR', message: expect.stringContaining('TRELLIS_NOT_LINKED: no link for keyvalue on actor counter') });
  });

  it('runtime - wasi:http/proxy component answers repeatedly (fresh instance per request when it needs one)', async () => {
    const loaded = await runtime.load({ name: 'http', path: paths['http-js'] });
    expect(loaded.world).toBe('wasi:http/proxy');
    for (const n of [1, 2, 3]) {
      const r = await runtime.invoke('http', httpRequest('POST', '/echo', `n=${n}`, `body ${n}`));
      expect(r.status).toBe(200);
      const seen = JSON.parse(text(r.body));
      expect(seen).toMatchObject({ method: 'POST', path: '/echo', query: `n=${n}`, body: `body ${n}` });
      expect(seen.headers).toContainEqual(['x-test', 'yes']);
    }
    const root = await runtime.invoke('http', httpRequest('GET', '/'));
    expect(text(root.body)).toBe('hello from wasi:http\n');
    expect((await runtime.invoke('http', httpRequest('GET', '/nope'))).status).toBe(404);
  });

  it('runtime - concurrent invocations spread over instances up to maxConcurrency', async () => {
    await runtime.load({ name: 'echo2', path: paths['echo-c'], policy: { maxConcurrency: 3, minInstances: 1 } });
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => runtime.invoke('echo2', bytesRequest(`m${i}`))));
    expect(answers.map((a) => text(a.body))).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`));
    const s = runtime.stats('echo2');
    expect(s.instances).toBeLessThanOrEqual(3);
    expect(s.instances).toBeGreaterThan(1);
    expect(s.coldStarts + s.warmCalls).toBe(30);
  });

  it('runtime - bad bytes fail with failed to load module', async () => {
    const cases: [Uint8Array, string][] = [
      [new TextEncoder().encode('not wasm at all'), 'bad magic'],
      [Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), 'a core module, not a component'],
      [Uint8Array.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 0xff, 0xff]), 'malformed section id'],
    ];
    for (const [bytes, reason] of cases) {
      const err = await runtime.load({ name: 'bad', bytes }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TRELLIS_LOAD_FAILED', message: expect.stringMatching(/^failed to load module: /) });
      expect((err as Error).message).toContain(reason);
    }
    expect(runtime.list().map((a) => a.name)).not.toContain('bad');
  });

  it('runtime - second load of the same bytes hits the cache (memory, then disk after a restart)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-runtime-cache-'));
    const bytes = await readFile(paths['echo-c']);
    {
      await using rt = await createRuntime({ cacheDir: dir });
      expect((await rt.load({ name: 'a', bytes })).source).toBe('transpiled');
      expect((await rt.load({ name: 'b', bytes })).source).toBe('memory');
      expect(rt.transpiles).toBe(1);
    }
    await using restarted = await createRuntime({ cacheDir: dir });
    const again = await restarted.load({ name: 'a', bytes });
    expect(again.source).toBe('disk');
    expect(restarted.transpiles).toBe(0);
    expect(text((await restarted.invoke('a', bytesRequest('cached'))).body)).toBe('cached');
  });

  it('runtime - instancePerRequest gives every invocation a fresh instance', async () => {
    await runtime.load({ name: 'fresh', path: paths['echo-c'], policy: { instancePerRequest: true, maxConcurrency: 1 } });
    for (let i = 0; i < 5; i++) expect(text((await runtime.invoke('fresh', bytesRequest(`r${i}`))).body)).toBe(`r${i}`);
    // The first call uses the pre-warmed instance; each later one an instance made while idle or on demand.
    const s = runtime.stats('fresh');
    expect(s.coldStarts + s.warmCalls).toBe(5);
  });

  it('runtime - http-client capability serves allowed hosts only', async () => {
    const seen: string[] = [];
    await using rt = await createRuntime({
      cacheDir: sharedCache,
      capabilities: {
        httpSend: async (call, req) => {
          seen.push(`${call.actor} ${req.method} ${req.url}`);
          return { status: 201, headers: [], body: new TextEncoder().encode('upstream body') };
        },
      },
    });
    await rt.load({ name: 'caller', path: paths['hostile-js'], policy: { allowedHosts: ['api.example.test'] } });
    const r = await rt.invoke('caller', httpRequest('GET', '/http', 'url=http://api.example.test/v1'));
    expect(r.headers).toContainEqual(['x-upstream-status', '201']);
    expect(text(r.body)).toBe('upstream body');
    await expect(rt.invoke('caller', httpRequest('GET', '/http', 'url=http://other.test/'))).rejects.toMatchObject({
      code: 'TRELLIS_SANDBOX_VIOLATION',
      message: 'host not allowed: other.test',
    });
    expect(seen).toEqual(['caller GET http://api.example.test/v1']);
  });

  it('runtime - a memory cap below what the component needs at start fails the load', async () => {
    await expect(runtime.load({ name: 'tiny', path: paths.hello, policy: { maxMemoryPages: 8 } })).rejects.toMatchObject({
      code: 'TRELLIS_OUT_OF_MEMORY',
      message: expect.stringMatching(/^out of memory: the module needs \d+ pages at start, maxMemoryPages is 8$/),
    });
  });

  it('runtime - a full queue fails fast with TRELLIS_OVERLOADED', async () => {
    await runtime.load({ name: 'slow', path: paths['hostile-c'], policy: { maxConcurrency: 1, executionTimeoutMs: 2000 } });
    const loop = { method: 'GET', path: '/loop', query: '', headers: [] as [string, string][], body: new Uint8Array() };
    const pending = Array.from({ length: 65 }, () => runtime.invoke('slow', loop, { deadlineMs: 100 }).catch((e: unknown) => e));
    await expect(runtime.invoke('slow', loop)).rejects.toMatchObject({ code: 'TRELLIS_OVERLOADED' });
    const outcomes = await Promise.all(pending);
    expect(outcomes.every((e) => (e as { code?: string }).code === 'TRELLIS_DEADLINE_EXCEEDED')).toBe(true);
  });

  it('runtime - unload removes the actor', async () => {
    await runtime.load({ name: 'gone', path: paths['echo-c'], policy: { minInstances: 0 } });
    expect(runtime.list().map((a) => a.name)).toContain('gone');
    await runtime.unload('gone');
    await expect(runtime.invoke('gone', bytesRequest('x'))).rejects.toMatchObject({ code: 'TRELLIS_NOT_FOUND' });
  });
});
