import { mkdir, mkdtemp, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExampleActors } from '../actors/index.ts';
import { createRuntime, type ActorRuntime } from '../host/runtime/index.ts';
import { bytesRequest, type ActorRequest } from '../lattice/wire/index.ts';

const decoder = new TextDecoder();
const sharedCache = join(tmpdir(), 'trellis-runtime-test-cache');

function call(path: string, query = ''): ActorRequest {
  return { method: 'GET', path, query, headers: [], body: new Uint8Array() };
}

let runtime: ActorRuntime;
let readonlyDir: string;
let writableDir: string;
const TIMEOUT_MS = 300;

beforeAll(async () => {
  const paths = await buildExampleActors();
  const root = await mkdtemp(join(tmpdir(), 'trellis-sandbox-'));
  readonlyDir = join(root, 'ro');
  writableDir = join(root, 'rw');
  await mkdir(readonlyDir);
  await mkdir(writableDir);
  await writeFile(join(readonlyDir, 'inside.txt'), 'granted');
  // Planted by the "operator": a link inside a granted dir that points out of it.
  await symlink('/etc/passwd', join(readonlyDir, 'escape'));
  process.env.TRELLIS_TEST_SECRET = 'do-not-leak';
  runtime = await createRuntime({ cacheDir: sharedCache });
  await Promise.all([
    runtime.load({ name: 'good', path: paths['echo-c'], policy: { maxConcurrency: 2 } }),
    runtime.load({
      name: 'hostile',
      path: paths['hostile-js'],
      policy: {
        allowedDirs: [
          { guestPath: '/data', hostPath: readonlyDir, readonly: true },
          { guestPath: '/scratch', hostPath: writableDir, readonly: false },
        ],
        allowedEnvVars: ['GRANTED'],
        env: { GRANTED: 'visible' },
        allowedHosts: ['api.allowed.test'],
      },
    }),
    runtime.load({ name: 'hostile-c', path: paths['hostile-c'], policy: { executionTimeoutMs: TIMEOUT_MS, maxMemoryPages: 64, maxConcurrency: 2 } }),
  ]);
});
afterAll(async () => {
  await runtime?.close();
});

/**
 * A well-behaved actor answering steadily while `work` runs, proving the host keeps serving.
 * With `answersDuring`, some answers must come before `work` ends (for work that lasts).
 */
async function whileGoodActorServes<T>(work: () => Promise<T>, options: { answersDuring?: boolean } = {}): Promise<T> {
  let stop = false;
  let answered = 0;
  let answeredDuring = 0;
  const good = (async () => {
    while (!stop) {
      const r = await runtime.invoke('good', bytesRequest(`still here ${answered}`));
      expect(decoder.decode(r.body)).toBe(`still here ${answered}`);
      answered++;
    }
  })();
  try {
    return await work();
  } finally {
    answeredDuring = answered;
    stop = true;
    await good;
    expect(answered).toBeGreaterThan(0);
    if (options.answersDuring) expect(answeredDuring).toBeGreaterThan(0);
  }
}

async function violation(req: ActorRequest, message: string): Promise<void> {
  await whileGoodActorServes(() => expect(runtime.invoke('hostile', req)).rejects.toMatchObject({ code: 'TRELLIS_SANDBOX_VIOLATION', message }));
}

describe('runtime sandbox', () => {
  it('runtime sandbox - reading /etc/passwd is denied, directly or by climbing out of a grant', async () => {
    await violation(call('/read-passwd', 'dir=/'), 'permission denied: /etc/passwd');
    await violation(call('/read-passwd', 'dir=/data'), 'permission denied: /etc/passwd');
  });

  it('runtime sandbox - a symlink out of a granted dir is denied', async () => {
    await violation(call('/symlink-escape', 'dir=/data&link=escape'), 'permission denied: /data/escape');
    // In a writable grant the guest may plant the link itself; following it is still refused.
    await violation(call('/symlink-escape', 'dir=/scratch&link=mine'), 'permission denied: /scratch/mine');
  });

  it('runtime sandbox - writing to a read-only grant is a violation, a writable grant works', async () => {
    await violation(call('/write-readonly', 'dir=/data'), 'sandbox violation: fs write');
    expect(await readdir(readonlyDir)).toEqual(['escape', 'inside.txt']);
    const ok = await runtime.invoke('hostile', call('/write-readonly', 'dir=/scratch&file=out.txt'));
    expect(decoder.decode(ok.body)).toBe('wrote 29 bytes to /scratch/out.txt');
    expect(await readdir(writableDir)).toContain('out.txt');
  });

  it('runtime sandbox - hard links and file times work in a writable grant and are violations in a read-only one', async () => {
    const body = async (path: string, query: string) => decoder.decode((await runtime.invoke('hostile', call(path, query))).body);
    await writeFile(join(writableDir, 'twin-a.txt'), 'a');
    await writeFile(join(writableDir, 'twin-b.txt'), 'b');
    expect(await body('/link', 'dir=/scratch&from=twin-a.txt&to=twin-a-link.txt')).toBe('linked /scratch/twin-a-link.txt');
    expect((await stat(join(writableDir, 'twin-a-link.txt'))).ino).toBe((await stat(join(writableDir, 'twin-a.txt'))).ino);
    // Through the guest's descriptors: a hard link is the same object, an equally long name is not.
    expect(JSON.parse(await body('/stat', 'dir=/scratch&path=twin-a-link.txt&same-as=twin-a.txt')).sameObject).toBe(true);
    expect(JSON.parse(await body('/stat', 'dir=/scratch&path=twin-a.txt&same-as=twin-b.txt')).sameObject).toBe(false);
    await violation(call('/link', 'dir=/data&from=inside.txt&to=copy.txt'), 'sandbox violation: fs write');

    expect(await body('/set-times', 'dir=/scratch&file=twin-b.txt&seconds=1000000000')).toBe('1000000000');
    expect((await stat(join(writableDir, 'twin-b.txt'))).mtimeMs).toBe(1_000_000_000_000);
    const before = (await stat(join(readonlyDir, 'inside.txt'))).mtimeMs;
    await violation(call('/set-times', 'dir=/data&file=inside.txt&seconds=1'), 'sandbox violation: fs write');
    expect((await stat(join(readonlyDir, 'inside.txt'))).mtimeMs).toBe(before);
    expect(await readdir(readonlyDir)).toEqual(['escape', 'inside.txt']);
  });

  it('runtime sandbox - the virtual root is a directory of its own, not the host /', async () => {
    const root = JSON.parse(decoder.decode((await runtime.invoke('hostile', call('/stat', 'dir=/'))).body));
    expect(root).toEqual({ type: 'directory', linkCount: '1', size: '0', mtime: null });
  });

  it('runtime sandbox - env vars outside allowedEnvVars are denied or invisible', async () => {
    await violation(call('/env-config', 'name=TRELLIS_TEST_SECRET'), 'env var not allowed: TRELLIS_TEST_SECRET');
    const granted = await runtime.invoke('hostile', call('/env-config', 'name=GRANTED'));
    expect(decoder.decode(granted.body)).toBe('visible');
    // Through WASI the environment holds only granted vars: the guest cannot even see the name.
    await expect(runtime.invoke('hostile', call('/env-wasi', 'name=TRELLIS_TEST_SECRET'))).rejects.toMatchObject({
      code: 'TRELLIS_ACTOR_ERROR',
      message: 'env var not visible: TRELLIS_TEST_SECRET',
    });
    expect(decoder.decode((await runtime.invoke('hostile', call('/env-wasi', 'name=GRANTED'))).body)).toBe('visible');
  });

  it('runtime sandbox - outbound HTTP to an unlisted host is denied before any capability is called', async () => {
    await violation(call('/http', 'url=http://evil.example.com/steal'), 'host not allowed: evil.example.com');
    // A listed host passes the policy and reaches the (unlinked) capability.
    await expect(runtime.invoke('hostile', call('/http', 'url=http://api.allowed.test/x'))).rejects.toMatchObject({
      message: expect.stringContaining('TRELLIS_NOT_LINKED'),
    });
    expect(decoder.decode((await runtime.invoke('hostile', call('/ok'))).body)).toBe('ok');
  });

  it('runtime sandbox - a runaway loop is stopped near the time limit and the actor keeps serving', async () => {
    const started = performance.now();
    await whileGoodActorServes(
      () => expect(runtime.invoke('hostile-c', call('/loop'))).rejects.toMatchObject({ code: 'TRELLIS_TIME_LIMIT', message: 'time limit exceeded' }),
      { answersDuring: true },
    );
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 1000); // generous: shared 2-core CI machines
    expect(decoder.decode((await runtime.invoke('hostile-c', call('/ok'))).body)).toBe('ok');
    expect(runtime.stats('hostile-c').workersReplaced).toBeGreaterThanOrEqual(1);
  });

  it('runtime sandbox - growing memory past maxMemoryPages fails with out of memory', async () => {
    await whileGoodActorServes(() =>
      expect(runtime.invoke('hostile-c', call('/grow-memory'))).rejects.toMatchObject({ code: 'TRELLIS_OUT_OF_MEMORY', message: 'out of memory' }),
    );
    expect(decoder.decode((await runtime.invoke('hostile-c', call('/ok'))).body)).toBe('ok');
  });

  it('runtime sandbox - a trap fails that invocation and the instance is replaced', async () => {
    await expect(runtime.invoke('hostile-c', call('/trap'))).rejects.toMatchObject({
      code: 'TRELLIS_WASM_TRAP',
      message: expect.stringMatching(/^wasm trap: .*unreachable/),
    });
    for (let i = 0; i < 3; i++) expect(decoder.decode((await runtime.invoke('hostile-c', call('/ok'))).body)).toBe('ok');
  });

  it('runtime sandbox - calls waiting behind a runaway loop are served by the replacement worker, not failed with it', async () => {
    // hostile-c runs 2 instances: two loops occupy both, so the next calls are posted behind
    // them (prefetched). Terminating a looping worker must hand those to its replacement.
    const loops = [runtime.invoke('hostile-c', call('/loop')), runtime.invoke('hostile-c', call('/loop'))];
    const behind = Array.from({ length: 4 }, () => runtime.invoke('hostile-c', call('/ok')));
    for (const loop of loops) await expect(loop).rejects.toMatchObject({ code: 'TRELLIS_TIME_LIMIT' });
    expect((await Promise.all(behind)).map((r) => decoder.decode(r.body))).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it('runtime sandbox - a deadline shorter than the policy limit ends the call with TRELLIS_DEADLINE_EXCEEDED', async () => {
    await expect(runtime.invoke('hostile-c', call('/loop'), { deadlineMs: 50 })).rejects.toMatchObject({ code: 'TRELLIS_DEADLINE_EXCEEDED' });
    expect(decoder.decode((await runtime.invoke('hostile-c', call('/ok'))).body)).toBe('ok');
  });
});
