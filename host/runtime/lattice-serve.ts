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
import { headers as natsHeaders, type Msg, type MsgHdrs } from 'nats';
import { connectParticipant } from '../../lattice/control/index.ts';
import { ATTEMPT_DROP_WITHIN_MS, ATTEMPT_PROGRESS_WITHIN_MS, decode, encode, isRecord, normalizeRequest, RpcHeaders, type ActorRequest, type ActorResponse, type InvokeReply } from '../../lattice/wire/index.ts';
import type { CallStats } from './call-stats.ts';
import type { ServeSpec, WireFailure } from './protocol.ts';

/** The outcome of one call as the worker's invoke reports it. */
export interface CallResult {
  response?: ActorResponse;
  error?: WireFailure;
  cold: boolean;
}

export interface LatticeServer {
  /** Stop taking calls, answer the ones NATS already delivered, close the connection. */
  stop(): Promise<void>;
}

/**
 * Join the queue group of `spec` and answer each call with `call`; resolves once the server has
 * the subscription. `call` returns undefined when the watchdog took the call over (it answers).
 */
export async function serveLattice(
  spec: ServeSpec,
  call: (request: ActorRequest, deadlineAt: number | undefined, reply: string) => CallResult | undefined,
  stats: CallStats,
  log: (level: 'info' | 'warn' | 'error', message: string) => void,
): Promise<LatticeServer> {
  // Connects like every long-running participant; fails with TRELLIS_NATS_UNAVAILABLE.
  const nc = await connectParticipant(spec.servers, spec.connectionName);
  const { hostId: host, version } = spec;

  const answer = (msg: Msg, reply: InvokeReply, started: number, result?: CallResult) => {
    stats.record(reply.ok ? undefined : reply.error.code, (performance.now() - started) / 1000, result?.cold);
    // No reply headers: who answered is in the body, and a header block on a reply costs the
    // caller a parse (and NATS an HMSG) on every call.
    if (msg.reply) msg.respond(encode(reply));
  };

  const onCall = (msg: Msg) => {
    const started = performance.now();
    let request: ActorRequest;
    let deadlineAt: number | undefined;
    let attemptExpires: number | undefined;
    try {
      const decoded = decode<ActorRequest>(msg.data, 'invocation');
      if (!isRecord(decoded) || !(decoded.body instanceof Uint8Array) || typeof decoded.method !== 'string') {
        return answer(msg, failure('TRELLIS_BAD_REQUEST', 'invocation body must be a msgpack ActorRequest map', host, version), started);
      }
      request = normalizeRequest(decoded);
      const headers = readHeaders(msg);
      deadlineAt = headers.deadline;
      attemptExpires = headers.attemptExpires;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return answer(msg, failure(e.code ?? 'TRELLIS_BAD_REQUEST', e.message ?? String(err), host, version), started);
    }
    if (deadlineAt !== undefined && !(deadlineAt > Date.now())) {
      return answer(msg, failure('TRELLIS_DEADLINE_EXCEEDED', 'deadline passed before the actor ran', host, version), started);
    }
    if (attemptExpires !== undefined && msg.reply) {
      const left = attemptExpires - Date.now();
      if (left < ATTEMPT_DROP_WITHIN_MS) {
        // The call waited here while this worker was busy, and its caller has sent it again
        // (or is about to): running it too would run it twice. No reply: nobody waits for one.
        stats.record('TRELLIS_TIMEOUT', (performance.now() - started) / 1000, undefined);
        return;
      }
      // The caller hears that the call has started before it would give up on it.
      if (left < ATTEMPT_PROGRESS_WITHIN_MS) msg.respond(PROGRESS_REPLY.body, { headers: PROGRESS_REPLY.headers });
    }
    const result = call(request, deadlineAt, msg.reply ?? '');
    if (!result) return; // the watchdog answered and this worker is going away
    answer(msg, result.error ? { ok: false, error: result.error, host, version } : { ok: true, response: result.response!, host, version }, started, result);
  };

  nc.subscribe(spec.subject, {
    queue: spec.queue,
    callback: (_err, msg) => {
      try {
        onCall(msg);
      } catch (err) {
        // A bug here must not take the worker down with calls waiting behind this one.
        answer(msg, failure('TRELLIS_INTERNAL', (err as Error).message ?? String(err), host, version), performance.now());
      }
    },
  });
  // The server knows this member before the actor is reported started.
  await nc.flush();

  // The operator sees this instance's connection come and go in the host's log.
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') {
        log(s.type === 'reconnect' ? 'info' : 'warn', `lattice connection ${s.type}${s.data ? ` (${String(s.data)})` : ''}: ${spec.subject}`);
      }
    }
  })();
  let stopping = false;
  // It reconnects forever; a connection that still closes (refused for good) leaves this
  // worker out of the queue group, so it ends and the pool starts a replacement.
  void nc.closed().then((err) => {
    if (stopping) return;
    log('error', `lattice connection closed${err ? ` (${err.message})` : ''}: ${spec.subject}; replacing this instance`);
    process.exit(1);
  });

  return {
    async stop() {
      stopping = true;
      await nc.drain().catch(() => {});
    },
  };
}

function failure(code: string, message: string, host: string, version: string): InvokeReply {
  return { ok: false, error: { code, message }, host, version };
}

/**
 * Headers that never change, encoded once (progress replies). nats.js encodes a header set on
 * every publish by calling its encode(); this set answers with the bytes it encoded when built.
 */
function constantHeaders(entries: [string, string][]): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of entries) h.set(k, v);
  const withEncode = h as MsgHdrs & { encode?: () => Uint8Array };
  if (typeof withEncode.encode === 'function') {
    const bytes = withEncode.encode();
    withEncode.encode = () => bytes;
  }
  return h;
}

const utf8 = new TextDecoder();

/** The two times a worker needs from a call's headers (epoch ms), when present and numeric. */
interface CallTimes {
  deadline?: number;
  attemptExpires?: number;
}

const asTime = (value: string | undefined) => {
  const n = value === undefined ? NaN : Number(value);
  return Number.isFinite(n) ? n : undefined;
};

/**
 * The deadline and attempt expiry of a call, read straight from the header bytes nats.js
 * received: decoding the whole header set costs more than the rest of a small call's
 * bookkeeping. Falls back to nats.js's own parser when its message layout is not the one this
 * reads (`_rdata` holding headers then payload, the headers' length in `_msg.hdr`).
 */
function readHeaders(msg: Msg): CallTimes {
  const raw = msg as unknown as { _rdata?: unknown; _msg?: { hdr?: unknown } };
  const length = raw._msg?.hdr;
  if (!(raw._rdata instanceof Uint8Array) || typeof length !== 'number') {
    return { deadline: asTime(msg.headers?.get(RpcHeaders.deadline)), attemptExpires: asTime(msg.headers?.get(RpcHeaders.attemptExpires)) };
  }
  const times: CallTimes = {};
  if (length < 0) return times;
  const lines = utf8.decode(raw._rdata.subarray(0, length)).split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === RpcHeaders.deadline) times.deadline = asTime(line.slice(colon + 1).trim());
    else if (name === RpcHeaders.attemptExpires) times.attemptExpires = asTime(line.slice(colon + 1).trim());
  }
  return times;
}

/** A progress reply ("still running"), its header encoded once: sent by workers and the watchdog. */
export const PROGRESS_REPLY = { body: new Uint8Array(0), headers: constantHeaders([[RpcHeaders.progress, '1']]) };
