/**
 * Signed component verification benchmark (issue 13): what checking a signature adds to an
 * actor start beyond the sha256 the host computes anyway for the artifact digest. Goal: < 1 ms.
 *
 * Pure: no NATS, no processes. For a small C component (echo-c, 2 KB) and a componentize-js one
 * (counter, 12 MB), each signed, it times per iteration, interleaved so a busy machine slows both
 * alike:
 *   digest        sha256 of the whole artifact: what an unsigned start pays today
 *   signed start  componentHashes (digest and claims hash in one pass) + verifyComponent given
 *                 that hash: what a start with allowed issuers pays
 *   extra         signed start − digest, per iteration (the figure the goal is about)
 *   verify only   verifyComponent given the hash: section walk, JWT decode, native Ed25519
 * and, for reference, a verification that hashes the bytes itself (a start fresh from the
 * object store, whose digest check runs in lattice/state and is not shared).
 *
 * Medians of BENCH_SIGNING_RUNS (default 41) after 5 unmeasured runs.
 * Alone: node --import tsx test/bench/signing.ts
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createAccount, createUser } from 'nkeys.js';
import { componentHashes, signComponent, verifyComponent } from '../../lattice/signing/index.ts';
import { envNumber, table } from './lib.ts';

const GOAL_MS = 1;
const WARMUP_RUNS = 5;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function time(call: () => unknown): number {
  const t0 = performance.now();
  call();
  return performance.now() - t0;
}

export async function run(): Promise<Record<string, unknown>> {
  const runs = Math.round(envNumber('BENCH_SIGNING_RUNS', 41));
  const issuer = createAccount();
  const allowed = new Set([issuer.getPublicKey()]);
  const rows: Record<string, string | number>[] = [];
  for (const name of ['echo-c', 'counter']) {
    const file = fileURLToPath(new URL(`../../.cache/actors/${name}.wasm`, import.meta.url));
    const bytes = signComponent(new Uint8Array(await readFile(file)), { issuer, subject: createUser().getPublicKey(), caps: ['keyvalue'] }).bytes;
    const digest = () => createHash('sha256').update(bytes).digest('hex');
    const signedStart = () => {
      const { unsignedHash } = componentHashes(bytes);
      const verdict = verifyComponent(bytes, allowed, Date.now(), unsignedHash);
      if (!verdict.ok) throw new Error(`${name}: ${verdict.message}`);
    };
    const verifyOnly = (hash: string) => () => verifyComponent(bytes, allowed, Date.now(), hash);
    const hash = componentHashes(bytes).unsignedHash!;
    for (let i = 0; i < WARMUP_RUNS; i++) digest(), signedStart(), verifyOnly(hash)(), verifyComponent(bytes, allowed, Date.now());
    const d: number[] = [];
    const s: number[] = [];
    const extra: number[] = [];
    const v: number[] = [];
    const cold: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate the order so neither always runs second, on warmer caches.
      let plain: number;
      let b: number;
      if (i % 2 === 0) {
        plain = time(digest);
        b = time(signedStart);
      } else {
        b = time(signedStart);
        plain = time(digest);
      }
      d.push(plain);
      s.push(b);
      extra.push(b - plain);
      v.push(time(verifyOnly(hash)));
      cold.push(time(() => verifyComponent(bytes, allowed, Date.now())));
    }
    const extraMs = median(extra);
    rows.push({
      component: `${name} (${(bytes.length / 1024).toFixed(0)} KiB)`,
      digestMs: median(d),
      signedStartMs: median(s),
      extraMs,
      verifyOnlyMs: median(v),
      verifyHashingItselfMs: median(cold),
      goal: Math.max(extraMs, median(v)) < GOAL_MS ? 'met' : 'MISSED',
    });
  }
  console.log(`signed component verification, median of ${runs} runs (goal: extra < ${GOAL_MS} ms beyond the digest sha256)`);
  console.log(table(rows));
  return { goalMs: GOAL_MS, runs, components: rows };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await run();
}
