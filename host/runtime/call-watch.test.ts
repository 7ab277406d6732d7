import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { CallWatch, LimitKind } from './call-watch.ts';

/** The worker side and the watchdog side of one record, as in a real pool: two views of one buffer. */
function pair(): { worker: CallWatch; watchdog: CallWatch } {
  const worker = new CallWatch();
  return { worker, watchdog: new CallWatch(worker.buffer) };
}

/** Start a real worker thread running `source` (which may import './call-watch.ts'). */
async function thread(source: string, workerData: unknown): Promise<Worker> {
  const here = dirname(fileURLToPath(import.meta.url));
  const out = await build({ stdin: { contents: source, resolveDir: here, loader: 'ts' }, bundle: true, platform: 'node', format: 'esm', write: false, logLevel: 'silent' });
  const file = join(tmpdir(), `trellis-call-watch-test-${process.pid}-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, out.outputFiles[0]!.contents);
  const worker = new Worker(pathToFileURL(file), { workerData });
  worker.once('exit', () => rmSync(file, { force: true }));
  return worker;
}

const exited = (w: Worker) =>
  new Promise<number>((resolve, reject) => {
    w.once('error', reject);
    w.once('exit', resolve);
  });

describe('call watch', () => {
  it('call watch - an idle record shows no call', () => {
    const { watchdog } = pair();
    expect(watchdog.busy()).toBe(false);
    expect(watchdog.blockedOnHost()).toBe(false);
    expect(watchdog.snapshot()).toBeUndefined();
  });

  it('call watch - the watchdog sees the running call the worker recorded, until it ends', () => {
    const { worker, watchdog } = pair();
    const before = Date.now();
    worker.begin(7, before + 5000, LimitKind.Deadline, '_INBOX.reply.1');
    const s = watchdog.snapshot()!;
    expect(s).toMatchObject({ endBy: before + 5000, kind: LimitKind.Deadline, jobId: 7, reply: '_INBOX.reply.1' });
    expect(s.startedAt).toBeGreaterThanOrEqual(before);
    expect(s.startedAt).toBeLessThanOrEqual(Date.now());
    expect(s.seq % 2).toBe(1);
    expect(watchdog.busy()).toBe(true);

    worker.waitingOnHost(true);
    expect(watchdog.blockedOnHost()).toBe(true);
    worker.waitingOnHost(false);
    expect(watchdog.blockedOnHost()).toBe(false);

    worker.waitingOnHost(true);
    expect(worker.end()).toBe(true);
    expect(watchdog.busy()).toBe(false);
    // Idle is never blocked, whatever the flag last said.
    expect(watchdog.blockedOnHost()).toBe(false);
    expect(watchdog.snapshot()).toBeUndefined();

    // The next call replaces every field.
    worker.begin(0, 1, LimitKind.TimeLimit);
    expect(watchdog.snapshot()).toMatchObject({ seq: s.seq + 2, endBy: 1, kind: LimitKind.TimeLimit, jobId: 0, reply: '' });
  });

  it('call watch - a reply subject that does not fit is dropped whole, never cut', () => {
    const { worker, watchdog } = pair();
    worker.begin(0, 0, LimitKind.TimeLimit, 'r'.repeat(512));
    expect(watchdog.snapshot()!.reply).toBe('r'.repeat(512));
    worker.end();
    worker.begin(0, 0, LimitKind.TimeLimit, 'r'.repeat(513));
    expect(watchdog.snapshot()!.reply).toBe('');
    worker.end();
    // 511 bytes and a 2-byte character: the character does not fit, so neither does the subject.
    worker.begin(0, 0, LimitKind.TimeLimit, 'r'.repeat(511) + 'é');
    expect(watchdog.snapshot()!.reply).toBe('');
  });

  it('call watch - a claim takes the call from the worker: exactly one side answers', () => {
    const { worker, watchdog } = pair();
    worker.begin(1, 0, LimitKind.TimeLimit);
    const s = watchdog.snapshot()!;
    expect(watchdog.claim(s)).toBe(true);
    expect(worker.end()).toBe(false);
    // Claimed: busy (the worker is going away), nothing to snapshot, nothing more to claim.
    expect(watchdog.busy()).toBe(true);
    expect(watchdog.snapshot()).toBeUndefined();
    expect(watchdog.claim(s)).toBe(false);
  });

  it('call watch - a call that ended, or a snapshot of an earlier call, cannot be claimed', () => {
    const { worker, watchdog } = pair();
    worker.begin(1, 0, LimitKind.TimeLimit);
    const first = watchdog.snapshot()!;
    expect(worker.end()).toBe(true);
    expect(watchdog.claim(first)).toBe(false);
    worker.begin(2, 0, LimitKind.TimeLimit);
    // The watchdog decided on the first call: it must not take the second with it.
    expect(watchdog.claim(first)).toBe(false);
    expect(watchdog.busy()).toBe(true);
    const second = watchdog.snapshot()!;
    expect(second.jobId).toBe(2);
    expect(watchdog.claim(second)).toBe(true);
  });

  it('call watch - the sequence wraps keeping its parity and never reads as claimed', () => {
    const { worker, watchdog } = pair();
    // The sequence is the record's first Int32; start it just below the wrap.
    new Int32Array(worker.buffer)[0] = 0x3fffffff - 3;
    for (let i = 0; i < 4; i++) {
      worker.begin(i, 0, LimitKind.TimeLimit);
      const s = watchdog.snapshot()!;
      expect(s.jobId).toBe(i);
      expect(s.seq % 2).toBe(1);
      expect(worker.end()).toBe(true);
      expect(watchdog.busy()).toBe(false);
    }
    expect(new Int32Array(worker.buffer)[0]).toBe(4);
    worker.begin(9, 0, LimitKind.TimeLimit);
    expect(watchdog.claim(watchdog.snapshot()!)).toBe(true);
  });

  it('call watch - snapshots taken while another thread rewrites the record are never torn', async () => {
    const stop = new SharedArrayBuffer(4);
    const watch = new CallWatch();
    // Every field of call n is derived from n, so a snapshot mixing two calls shows.
    const writer = await thread(
      `import { workerData } from 'node:worker_threads';
       import { CallWatch } from './call-watch.ts';
       const w = new CallWatch(workerData.buffer);
       const stop = new Int32Array(workerData.stop);
       for (let n = 1; Atomics.load(stop, 0) === 0; n++) {
         w.begin(n, n * 3, n % 2, 'reply.' + n);
         w.end();
       }`,
      { buffer: watch.buffer, stop },
    );
    const done = exited(writer);
    let consistent = 0;
    const torn: unknown[] = [];
    for (let spins = 0; consistent < 20_000 && spins < 200_000_000; spins++) {
      const s = watch.snapshot();
      if (!s) continue;
      if (s.endBy === s.jobId * 3 && s.kind === s.jobId % 2 && s.reply === `reply.${s.jobId}`) consistent++;
      else torn.push(s);
    }
    Atomics.store(new Int32Array(stop), 0, 1);
    expect(await done).toBe(0);
    expect(torn).toEqual([]);
    expect(consistent).toBe(20_000);
  });

  it('call watch - when the watchdog claims as the worker ends, exactly one of them wins', async () => {
    const rounds = 1000;
    const buffers = Array.from({ length: rounds }, () => new CallWatch().buffer);
    const sync = new SharedArrayBuffer(8); // 0: round the worker began, 1: round the watchdog has seen
    const workerWon = new SharedArrayBuffer(rounds * 4);
    const racer = await thread(
      `import { workerData } from 'node:worker_threads';
       import { CallWatch } from './call-watch.ts';
       const sync = new Int32Array(workerData.sync);
       const won = new Int32Array(workerData.workerWon);
       let x = 0;
       workerData.buffers.forEach((buffer, i) => {
         const w = new CallWatch(buffer);
         w.begin(i, 0, 0);
         Atomics.store(sync, 0, i + 1);
         while (Atomics.load(sync, 1) < i + 1);
         for (let k = 0; k < (i * 7) % 200; k++) x += k;
         won[i] = w.end() ? 1 : 0;
       });`,
      { buffers, sync, workerWon },
    );
    const done = exited(racer);
    const s32 = new Int32Array(sync);
    const claimed: boolean[] = [];
    let x = 0;
    for (let i = 0; i < rounds; i++) {
      while (Atomics.load(s32, 0) < i + 1);
      const watch = new CallWatch(buffers[i]);
      const snapshot = watch.snapshot()!;
      Atomics.store(s32, 1, i + 1);
      for (let k = 0; k < (i * 13) % 200; k++) x += k;
      claimed.push(watch.claim(snapshot));
    }
    expect(await done).toBe(0);
    const won = new Int32Array(workerWon);
    const both = claimed.filter((c, i) => c && won[i] === 1).length;
    const neither = claimed.filter((c, i) => !c && won[i] === 0).length;
    expect({ both, neither }).toEqual({ both: 0, neither: 0 });
  });
});
