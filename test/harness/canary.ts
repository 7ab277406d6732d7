/**
 * Helpers of the canary tests: real HTTP load that records which version answered each request
 * and when, the `trellis` CLI run as a child process, and reading the canary documents.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { NatsConnection } from 'nats';
import { openCanaries, type CanaryRecord } from '../../lattice/canary-controller/index.ts';
import type { Subjects } from '../../lattice/subjects/index.ts';
import { decodeEvent, type LatticeEvent } from '../../lattice/wire/index.ts';
import { TRELLIS_BIN } from './index.ts';

const exec = promisify(execFile);

export interface Answer {
  at: number;
  status: number;
  version: string | null;
}

/** Keep `concurrency` GETs going on `url` until stopped, pacing each worker by `pauseMs`. */
export function versionLoad(url: string, options: { concurrency?: number; pauseMs?: number } = {}) {
  const answers: Answer[] = [];
  let running = true;
  const done = Promise.all(
    Array.from({ length: options.concurrency ?? 4 }, async () => {
      while (running) {
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
          await res.arrayBuffer();
          answers.push({ at: Date.now(), status: res.status, version: res.headers.get('x-trellis-version') });
        } catch {
          answers.push({ at: Date.now(), status: 0, version: null });
        }
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    }),
  );
  return {
    answers,
    bad: () => answers.filter((a) => a.status < 200 || a.status >= 300),
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Run the CLI; never throws: the exit code, stdout and stderr come back. */
export async function cli(args: string[], nats: string, lattice: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [TRELLIS_BIN, ...args, '--nats', nats, '--lattice', lattice], { timeout: 180_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Read canary documents. */
export async function canaryReader(nc: NatsConnection, subjects: Subjects) {
  const docs = await openCanaries(nc, subjects);
  return {
    get: async (actor: string): Promise<CanaryRecord | undefined> => (await docs.get(actor))?.value,
    docs,
  };
}

/** Collect the lattice's events from now on. */
export function eventLog(nc: NatsConnection, subjects: Subjects): { events: LatticeEvent[]; stop: () => void } {
  const events: LatticeEvent[] = [];
  const sub = nc.subscribe(subjects.allEvents(), {
    callback: (_err, msg) => {
      try {
        events.push(decodeEvent(msg.data));
      } catch {
        /* not ours */
      }
    },
  });
  return { events, stop: () => sub.unsubscribe() };
}
