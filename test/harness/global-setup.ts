/** Runs once before the suites: fail fast with a clear message when nats-server is missing. */
import { natsServerBinary } from '../../lattice/nats-server/index.ts';

export default function setup(): void {
  natsServerBinary();
}
