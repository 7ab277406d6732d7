/**
 * Worker side of lattice serving: an actor worker holds its own NATS connection and is a member
 * of its version's queue group, so a lattice call goes NATS → worker → NATS without touching the
 * host's main thread. That hop (structured clone both ways and two extra thread wake-ups) cost
 * more than everything else a host does per call together.
 *
 * NATS balances calls over every worker of every host in the queue group. Calls that arrive
 * while this worker is busy wait in its socket, in order. The main thread still watches each
 * call through the shared CallWatch record: it sends progress replies for long calls and
 * terminates overruns (see pool.ts).
 */
import { connect, headers as natsHeaders, type Msg, type NatsConnection } from 'nats';
import { decode, encode, isRecord, normalizeRequest, RpcHeaders, type ActorRequest, type ActorResponse, type InvokeReply } from '../../lattice/wire/index.ts';
import type { ServedBatch, ServeSpec, WireFailure } from './protocol.ts';

/** The outcome of one call as the worker's invoke reports it. */
export interface CallResult {
  response?: ActorResponse;
  error?: WireFailure;
  cold: boolean;
  callMs: number;
}

export interface LatticeServer {
  /** Stop taking calls, answer the ones NATS already delivered, close the connection. */
  stop(): Promise<void>;
}

/** How often a busy worker reports what it served (metrics lag by at most this much). */
const REPORT_EVERY_MS = 200;
const MAX_CALL_SAMPLES = 256;

/**
 * Join the queue group of `spec` and answer each call with `call`; resolves once the server has
 * the subscription. `call` returns undefined when the watchdog took the call over (it answers).
 */
export async function serveLattice(
  spec: ServeSpec,
  call: (request: ActorRequest, deadlineAt: number | undefined, reply: string) => CallResult | undefined,
  report: (batch: ServedBatch) => void,
): Promise<LatticeServer> {
  const nc: NatsConnection = await connect({
    servers: spec.servers,
    name: spec.connectionName,
    pingInterval: 2000,
    maxPingOut: 2,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  });
  const replyHeaders = natsHeaders();
  for (const [k, v] of spec.replyHeaders) replyHeaders.set(k, v);

  let batch = emptyBatch();
  let reportTimer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(reportTimer);
    reportTimer = undefined;
    if (batch.seconds.length === 0) return;
    report(batch);
    batch = emptyBatch();
  };

  const answer = (msg: Msg, reply: InvokeReply, started: number) => {
    if (reply.ok) batch.ok++;
    else batch.errors[reply.error.code] = (batch.errors[reply.error.code] ?? 0) + 1;
    batch.seconds.push((performance.now() - started) / 1000);
    reportTimer ??= setTimeout(flush, REPORT_EVERY_MS);
    if (msg.reply) msg.respond(encode(reply), { headers: replyHeaders });
  };

  const onCall = (msg: Msg) => {
    const started = performance.now();
    let request: ActorRequest;
    let deadlineAt: number | undefined;
    try {
      const decoded = decode<ActorRequest>(msg.data, 'invocation');
      if (!isRecord(decoded) || !(decoded.body instanceof Uint8Array) || typeof decoded.method !== 'string') {
        return answer(msg, failure('TRELLIS_BAD_REQUEST', 'invocation body must be a msgpack ActorRequest map'), started);
      }
      request = normalizeRequest(decoded);
      const header = msg.headers?.get(RpcHeaders.deadline);
      deadlineAt = header ? Number(header) : undefined;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return answer(msg, failure(e.code ?? 'TRELLIS_BAD_REQUEST', e.message ?? String(err)), started);
    }
    if (deadlineAt !== undefined && !(deadlineAt > Date.now())) {
      return answer(msg, failure('TRELLIS_DEADLINE_EXCEEDED', 'deadline passed before the actor ran'), started);
    }
    const result = call(request, deadlineAt, msg.reply ?? '');
    if (!result) return; // the watchdog answered and this worker is going away
    if (result.cold) batch.coldStarts++;
    else {
      batch.warmCalls++;
      if (!result.error && batch.warmCallMs.length < MAX_CALL_SAMPLES) batch.warmCallMs.push(result.callMs);
    }
    answer(msg, result.error ? { ok: false, error: result.error } : { ok: true, response: result.response! }, started);
  };

  nc.subscribe(spec.subject, {
    queue: spec.queue,
    callback: (_err, msg) => {
      try {
        onCall(msg);
      } catch (err) {
        // A bug here must not take the worker down with calls waiting behind this one.
        answer(msg, failure('TRELLIS_INTERNAL', (err as Error).message ?? String(err)), performance.now());
      }
    },
  });
  // The server knows this member before the actor is reported started.
  await nc.flush();

  return {
    async stop() {
      await nc.drain().catch(() => {});
      flush();
    },
  };
}

function emptyBatch(): ServedBatch {
  return { ok: 0, errors: {}, seconds: [], coldStarts: 0, warmCalls: 0, warmCallMs: [] };
}

function failure(code: string, message: string): InvokeReply {
  return { ok: false, error: { code, message } };
}
