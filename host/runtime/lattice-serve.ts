/**
 * Worker side of lattice serving: an actor worker holds its own NATS connection and is a member
 * of its version's queue group, so a lattice call goes NATS → worker → NATS without touching the
 * host's main thread. That hop (structured clone both ways and two extra thread wake-ups) cost
 * more than everything else a host does per call together.
 *
 * NATS balances calls over every worker of every host in the queue group. Calls that arrive
 * while this worker is busy wait in its socket, in order. A call taken is acknowledged with a
 * taken reply before the actor runs (see `take`); the main thread then watches it through the
 * shared CallWatch record: it sends progress replies while it runs and terminates overruns
 * (see pool.ts).
 */
import { randomUUID } from 'node:crypto';
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import { connectParticipant } from '../../lattice/control/index.ts';
import { ATTEMPT_TAKE_MARGIN_MS, checkInvocationId, decodeActorRequest, encode, RpcHeaders, type ActorRequest, type ActorResponse, type InvokeReply } from '../../lattice/wire/index.ts';
import type { WireError } from '../../lattice/errors/index.ts';
import type { CallStats } from './call-stats.ts';
import type { ServeSpec } from './protocol.ts';

/** The outcome of one call as the worker's invoke reports it. */
export interface CallResult {
  response?: ActorResponse;
  error?: WireError;
  cold: boolean;
}

/** What the worker needs to know of a lattice call besides its request. */
export interface LatticeCall {
  invocationId: string;
  /** Epoch ms, when the caller said. */
  deadlineAt: number | undefined;
  /** Where the watchdog sends progress replies ('' when the caller wants no reply). */
  reply: string;
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
  call: (request: ActorRequest, lattice: LatticeCall) => CallResult | undefined,
  stats: CallStats,
  log: (level: 'info' | 'warn' | 'error', message: string) => void,
): Promise<LatticeServer> {
  // Connects like every long-running participant; fails with TRELLIS_NATS_UNAVAILABLE.
  const nc = await connectParticipant(spec.servers, spec.connectionName);
  const { hostId: host, version } = spec;
  const syncFlush = canFlushNow(nc);
  if (!syncFlush) log('warn', 'nats.js has no synchronous flush here (protocol.flushPending): each call now waits one event-loop turn for its taken reply to go out');

  const answer = (msg: Msg, reply: InvokeReply, started: number, result?: CallResult, unserved = false) => {
    // The status compare is the only per-call cost of telling 5xx responses apart (canary analysis).
    if (reply.ok) stats.record(undefined, (performance.now() - started) / 1000, result?.cold, reply.response.status >= 500);
    else stats.record(reply.error.code, (performance.now() - started) / 1000, result?.cold, false, unserved);
    // No reply headers: who answered is in the body, and a header block on a reply costs the
    // caller a parse (and NATS an HMSG) on every call.
    if (msg.reply && !nc.isClosed()) msg.respond(encode(reply));
  };

  /** A decoded call, not yet taken. */
  interface Arrived {
    msg: Msg;
    request: ActorRequest;
    times: CallHeaders;
    started: number;
    /** A taken reply was sent (and must leave before the guest runs). */
    acked?: boolean;
  }

  /**
   * Take the call, unless its attempt is (nearly) over: then it is dropped unanswered, since its
   * caller sends it again (or already has) and running it too would run it twice. A taken call
   * is acknowledged at once, and the acknowledgement must leave the process before the guest
   * runs: a synchronous guest holds the event loop, and nats.js only writes what it buffered
   * when the loop turns. See lattice/rpc/reply-mux.ts for why the margin and the order matter.
   */
  const take = (a: Arrived): boolean => {
    const { msg, times } = a;
    if (!msg.reply) return true;
    if (times.attemptExpires !== undefined && times.attemptExpires - Date.now() < ATTEMPT_TAKE_MARGIN_MS) {
      stats.record('TRELLIS_TIMEOUT', (performance.now() - a.started) / 1000, undefined, false, true);
      return false;
    }
    // On its last attempt (it ends at the deadline) the caller sends nothing again, so nothing
    // can run twice: the acknowledgement, an extra message and write, would buy nothing.
    if (times.attemptExpires !== undefined && times.deadline !== undefined && times.attemptExpires >= times.deadline) return true;
    msg.respond(TAKEN_REPLY.body, { headers: TAKEN_REPLY.headers });
    a.acked = true;
    return true;
  };

  const run = (a: Arrived) => {
    const result = call(a.request, { invocationId: a.times.invocationId ?? randomUUID(), deadlineAt: a.times.deadline, reply: a.msg.reply ?? '' });
    if (!result) return; // the watchdog answered and this worker is going away
    answer(a.msg, result.error ? { ok: false, error: result.error, host, version } : { ok: true, response: result.response!, host, version }, a.started, result);
  };

  // Without a synchronous flush, calls wait here and each one is taken (and its taken reply
  // written by nats.js's own flush) one event-loop turn before its guest runs; one at a time,
  // so no call is acknowledged while it still waits behind another.
  const waiting: Arrived[] = [];
  let draining = false;
  const runNext = () => {
    while (waiting.length > 0) {
      const a = waiting.shift()!;
      if (!take(a)) continue;
      setImmediate(() => {
        guarded(a.msg, () => run(a));
        runNext();
      });
      return;
    }
    draining = false;
  };

  const onCall = (msg: Msg) => {
    const started = performance.now();
    let request: ActorRequest;
    let times: CallHeaders;
    try {
      // Scanned within the RPC limits, decoded and checked field by field (lattice/wire/actor.ts):
      // the guest never sees a half-parsed request.
      request = decodeActorRequest(msg.data);
      times = readHeaders(msg);
      checkInvocationId(times.invocationId);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return answer(msg, failure(e.code ?? 'TRELLIS_BAD_REQUEST', e.message ?? String(err), host, version), started);
    }
    if (times.deadline !== undefined && !(times.deadline > Date.now())) {
      return answer(msg, failure('TRELLIS_DEADLINE_EXCEEDED', 'deadline passed before the actor ran', host, version), started, undefined, true);
    }
    const arrived: Arrived = { msg, request, times, started };
    if (!syncFlush) {
      waiting.push(arrived);
      if (!draining) {
        draining = true;
        setImmediate(runNext);
      }
      return;
    }
    if (!take(arrived)) return;
    if (arrived.acked) flushNow(nc);
    run(arrived);
  };

  const guarded = (msg: Msg, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      // A bug here must not take the worker down with calls waiting behind this one.
      answer(msg, failure('TRELLIS_INTERNAL', (err as Error).message ?? String(err), host, version), performance.now());
    }
  };

  nc.subscribe(spec.subject, { queue: spec.queue, callback: (_err, msg) => guarded(msg, () => onCall(msg)) });
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
 * A test pins that publish still calls it (test/nats-fast-paths.test.ts).
 */
export function constantHeaders(entries: [string, string][]): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of entries) h.set(k, v);
  const withEncode = h as MsgHdrs & { encode?: () => Uint8Array };
  if (typeof withEncode.encode === 'function') {
    const bytes = withEncode.encode();
    withEncode.encode = () => bytes;
  }
  return h;
}

/**
 * Write what nats.js has buffered to the socket now, from inside a callback. nats.js flushes
 * its outbound buffer in a microtask, which a synchronous guest would hold back until it ends;
 * its protocol handler's flushPending() does the same write at once. An internal of nats.js
 * 2.x, pinned by test/nats-fast-paths.test.ts; without it, serving falls back to waiting a turn.
 */
export function flushNow(nc: NatsConnection): boolean {
  const protocol = (nc as unknown as { protocol?: { flushPending?: () => void } }).protocol;
  if (typeof protocol?.flushPending !== 'function') return false;
  protocol.flushPending();
  return true;
}

/** Whether flushNow works on this connection (checked once per connection). */
export function canFlushNow(nc: NatsConnection): boolean {
  return typeof (nc as unknown as { protocol?: { flushPending?: unknown } }).protocol?.flushPending === 'function';
}

const utf8 = new TextDecoder();

/** What a worker reads from a call's headers: its invocation id and two times (epoch ms). */
export interface CallHeaders {
  invocationId?: string;
  deadline?: number;
  attemptExpires?: number;
  /** Read from the raw header bytes (true) or through nats.js's parser (the fallback). */
  fast: boolean;
}

const asTime = (value: string | undefined) => {
  const n = value === undefined ? NaN : Number(value);
  return Number.isFinite(n) ? n : undefined;
};

/**
 * The invocation id, deadline and attempt expiry of a call, read straight from the header bytes
 * nats.js received: decoding the whole header set costs more than the rest of a small call's
 * bookkeeping. Falls back to nats.js's own parser when its message layout is not the one this
 * reads (`_rdata` holding headers then payload, the headers' length in `_msg.hdr`); a test pins
 * the layout (test/nats-fast-paths.test.ts).
 */
export function readHeaders(msg: Msg): CallHeaders {
  const raw = msg as unknown as { _rdata?: unknown; _msg?: { hdr?: unknown } };
  const length = raw._msg?.hdr;
  if (!(raw._rdata instanceof Uint8Array) || typeof length !== 'number') {
    const h = msg.headers;
    return { invocationId: h?.get(RpcHeaders.invocationId) || undefined, deadline: asTime(h?.get(RpcHeaders.deadline)), attemptExpires: asTime(h?.get(RpcHeaders.attemptExpires)), fast: false };
  }
  const times: CallHeaders = { fast: true };
  if (length < 0) return times;
  const lines = utf8.decode(raw._rdata.subarray(0, length)).split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === RpcHeaders.deadline) times.deadline = asTime(line.slice(colon + 1).trim());
    else if (name === RpcHeaders.attemptExpires) times.attemptExpires = asTime(line.slice(colon + 1).trim());
    else if (name === RpcHeaders.invocationId) times.invocationId = line.slice(colon + 1).trim() || undefined;
  }
  return times;
}

/** A progress reply ("still running"), its header encoded once: sent by workers and the watchdog. */
export const PROGRESS_REPLY = { body: new Uint8Array(0), headers: constantHeaders([[RpcHeaders.progress, '1']]) };
/** The taken reply a worker sends before it runs a call (progress too, for older callers). */
export const TAKEN_REPLY = { body: new Uint8Array(0), headers: constantHeaders([[RpcHeaders.progress, '1'], [RpcHeaders.taken, '1']]) };

/** The nats.js internals serving relies on, for the test that pins them (not for other use). */
export const natsFastPaths = { readHeaders, constantHeaders, flushNow, canFlushNow };
