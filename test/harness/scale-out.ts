/**
 * A lattice of many host processes on one box, each running many small actors: the scale-out
 * test (a few hosts) and bench (50) share it. Hosts run one worker each and no controller (the
 * actors are started by hand), so the box holds as many as it can.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ControlClient } from '../../lattice/control/index.ts';
import { openArtifacts } from '../../lattice/state/index.ts';
import { exampleActor, spawnHost, type HostProcess } from './index.ts';

export interface ScaleOut extends AsyncDisposable {
  hosts: HostProcess[];
  /** actor names, per host, in start order (each a distinct actor at version 1.0.0). */
  actors: string[][];
}

/** Resident memory of a process, bytes (Linux). */
export function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/**
 * Start `hosts` host processes (`parallel` at a time) and `actorsPerHost` distinct echo-c actors
 * on each (one instance, a small memory cap).
 */
export async function startScaleOut(client: ControlClient, nats: string, lattice: string, hosts: number, actorsPerHost: number, parallel = 4, heartbeatMs = 1000): Promise<ScaleOut> {
  const started: HostProcess[] = [];
  const dispose = async () => {
    await Promise.all(started.map((h) => h[Symbol.asyncDispose]()));
  };
  try {
    for (let i = 0; i < hosts; i += parallel) {
      const batch = Array.from({ length: Math.min(parallel, hosts - i) }, (_, j) =>
        spawnHost({ nats, lattice, name: `so-${i + j}`, heartbeatMs, extraArgs: ['--workers', '1', '--no-controller'] }),
      );
      started.push(...(await Promise.all(batch)));
    }
    const { digest } = await (await openArtifacts(client.nc, client.subjects)).push(new Uint8Array(await readFile(exampleActor('echo-c'))));
    const actors = started.map((_, h) => Array.from({ length: actorsPerHost }, (_, a) => `so${h}-${a}`));
    await Promise.all(
      started.map(async (host, h) => {
        for (const actor of actors[h]!) await client.startActor(host.id, { actor, version: '1.0.0', digest, count: 1, policy: { maxMemoryPages: 32 } }, { timeoutMs: 120_000 });
      }),
    );
    return { hosts: started, actors, [Symbol.asyncDispose]: dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
