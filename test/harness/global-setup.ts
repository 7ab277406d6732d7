/**
 * Runs once before the suites: fail fast with a clear message when nats-server is missing, build
 * the example actors (cached by source hash, so only a fresh machine pays for it), and bring the
 * compiled CLI in dist/ up to date, so the suites' `trellis` child processes run what users run
 * (the bin would otherwise fall back to the sources, correct but slower).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildExampleActors } from '../../actors/index.ts';
import { natsServerBinary } from '../../lattice/nats-server/index.ts';

export default async function setup(): Promise<void> {
  natsServerBinary();
  execFileSync(process.execPath, [fileURLToPath(new URL('../../host/cli/build-dist.mjs', import.meta.url))], { stdio: 'inherit' });
  const started = Date.now();
  const built = await buildExampleActors();
  console.log(`example actors ready in ${Date.now() - started} ms: ${Object.keys(built).join(', ')}`);
}
