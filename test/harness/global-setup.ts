/**
 * Runs once before the suites: fail fast with a clear message when nats-server is missing, and
 * build the example actors (cached by source hash, so only a fresh machine pays for it).
 */
import { buildExampleActors } from '../../actors/index.ts';
import { natsServerBinary } from '../../lattice/nats-server/index.ts';

export default async function setup(): Promise<void> {
  natsServerBinary();
  const started = Date.now();
  const built = await buildExampleActors();
  console.log(`example actors ready in ${Date.now() - started} ms: ${Object.keys(built).join(', ')}`);
}
