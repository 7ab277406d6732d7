/**
 * The baseline of the RPC benchmark: a plain NATS queue subscriber in its own process. `invoke` is
 * measured against it, so both cross the same process and server hops.
 *
 * Modes, each adding one layer of what a host does per invocation, so the host's cost can be
 * split into its parts:
 *   echo     respond with the request payload as is (the raw NATS floor)
 *   codec    decode the msgpack ActorRequest, read the deadline header, answer an msgpack
 *            InvokeReply (who answered in the body, no headers): everything but the actor runtime
 *   runtime  codec + the echo-c actor in this process's own actor runtime, reached by a
 *            main thread → worker hop per call (the host's design before its workers served
 *            the lattice themselves)
 *
 * Usage: node --import tsx test/bench/raw-responder.ts <nats-url> <subject> [echo|codec|runtime] [instances]
 */
import { connect, type Msg } from 'nats';
import { decode, encode, RpcHeaders, type ActorRequest, type ActorResponse, type InvokeReply } from '../../lattice/wire/index.ts';

const [url, subject, mode = 'echo', instances = '2'] = process.argv.slice(2);
if (!url || !subject || !['echo', 'codec', 'runtime'].includes(mode)) {
  console.error('usage: raw-responder.ts <nats-url> <subject> [echo|codec|runtime] [instances]');
  process.exit(2);
}

let invokeActor: ((request: ActorRequest, deadlineMs?: number) => Promise<ActorResponse>) | undefined;
let closeRuntime: (() => Promise<void>) | undefined;
if (mode === 'runtime') {
  const { createRuntime } = await import('../../host/runtime/index.ts');
  const { exampleActor } = await import('../harness/index.ts');
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const cacheDir = await mkdtemp(join(tmpdir(), 'trellis-bench-responder-'));
  const runtime = await createRuntime({ cacheDir });
  const n = Number(instances);
  await runtime.load({ name: 'echo', path: exampleActor('echo-c'), policy: { minInstances: n, maxConcurrency: n } });
  invokeActor = (request, deadlineMs) => runtime.invoke('echo', request, { deadlineMs });
  closeRuntime = async () => {
    await runtime.close();
    await rm(cacheDir, { recursive: true, force: true });
  };
}


/** The host's per-call work minus the runtime (and minus metrics and bookkeeping). */
async function serve(msg: Msg): Promise<void> {
  let reply: InvokeReply;
  try {
    const request = decode<ActorRequest>(msg.data, 'invocation');
    const deadlineHeader = msg.headers?.get(RpcHeaders.deadline);
    const deadlineMs = deadlineHeader ? Number(deadlineHeader) - Date.now() : undefined;
    if (invokeActor) {
      // Same as the host: a compact body, so posting it to the worker copies only the body.
      const body = request.body;
      request.body = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice();
      reply = { ok: true, response: await invokeActor(request, deadlineMs) };
    } else reply = { ok: true, response: { status: 200, headers: [], body: request.body } };
  } catch (err) {
    reply = { ok: false, error: { code: 'TRELLIS_INTERNAL', message: (err as Error).message } };
  }
  msg.respond(encode({ ...reply, host: 'bench-responder', version: '1.0.0' }));
}

const nc = await connect({ servers: url, name: `bench-responder-${mode}` });
nc.subscribe(subject, {
  queue: 'bench-raw',
  callback: mode === 'echo' ? (_err, msg) => void msg.respond(msg.data) : (_err, msg) => void serve(msg),
});
await nc.flush();
console.log('ready');
const stop = async () => {
  await nc.drain().catch(() => {});
  await closeRuntime?.();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
