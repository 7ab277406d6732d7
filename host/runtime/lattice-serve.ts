/**
 * Worker side of lattice serving: each shared actor worker holds one NATS connection and is a
 * member of the queue group of every actor version the host serves, so a lattice call goes
 * NATS → worker → NATS without touching the host's main thread. That hop (structured clone
 * both ways and two extra thread wake-ups) cost more than everything else a host does per call.
 *
 * NATS balances calls over every worker of every host in the queue group. A worker runs one
 * guest at a time, and calls that arrive while it runs one wait in its socket, in order. So a
 * worker about to run a call of a version whose last call here was long first leaves its queue
 * groups (a drain: what the server already sent is still handled) while another worker of the
 * host still takes calls, and joins again after: calls then go to the free workers instead of
 * waiting behind the long one (see `pause`). A call taken is acknowledged with a taken reply
 * before the actor runs (see `take`); the main thread watches it through the shared CallWatch
 * record: it sends progress replies while it runs and terminates overruns (see workers.ts).
 */
import { randomUUID } from 'node:crypto';
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { connectParticipant } from '../../lattice/control/index.ts';
import { ATTEMPT_TAKE_MARGIN_MS, checkInvocationId, decodeActorRequest, encode, RpcHeaders, type ActorRequest, type ActorResponse, type InvokeReply } from '../../lattice/wire/index.ts';
import type { WireError } from '../../lattice/errors/index.ts';
import type { CallStats } from './call-stats.ts';
import type { ServeSpec, WorkerConnection } from './protocol.ts';
import { leaveAll, type Subscribers } from './subscribers.ts';

/** Short calls an actor takes after a long one before its calls stop pausing the queue groups. */
export const LONG_CALL_SCORE = 16;

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
  /** The caller's W3C trace context. */
  traceparent: string | undefined;
}

/** One actor version served from a worker's connection. */
export interface Served {
  /** Stop taking its calls and answer the ones NATS already delivered. */
  stop(): Promise<void>;
}

/** A worker's lattice connection, shared by every actor version it serves. */
export interface WorkerLattice {
  /**
   * Join the queue group of `spec` and answer each call with `call`; resolves once the server
   * has the subscription. `call` returns undefined when the watchdog took the call over.
   */
  serve(spec: ServeSpec, call: (request: ActorRequest, lattice: LatticeCall) => CallResult | undefined, stats: CallStats, subscribers: Subscribers, live: () => boolean): Promise<Served>;
  /**
   * Before a call expected to be long: leave every queue group, unless one of its versions has
   * no other subscriber on the host now (see subscribers.ts). True when it left (then `resume`).
   */
  pause(): boolean;
  resume(): void;
}

/**
 * Connect a worker to the lattice. `lost` runs when the connection closes for good (it
 * reconnects forever, so only when refused for good): the worker is then replaced.
 */
export async function connectWorker(
  conn: WorkerConnection,
  name: string,
  log: (level: 'info' | 'warn' | 'error', message: string) => void,
  lost: () => void,
): Promise<WorkerLattice> {
  // Connects like every long-running participant; fails with TRELLIS_NATS_UNAVAILABLE.
  const nc = await connectParticipant(conn.connect ?? conn.servers, name);
  const syncFlush = canFlushNow(nc);
  if (!syncFlush) log('warn', 'nats.js has no synchronous flush here (protocol.flushPending): each call now waits one event-loop turn for its taken reply to go out');
  /** Every version served: its subscription now (undefined while paused), how to make one, its count. */
  const versions = new Set<Entry>();
  let paused = false;
  let disconnected = false;
  // The operator sees this worker's connection come and go in the host's log. While it is down
  // this worker takes no calls, so it is not counted as a subscriber (another worker must not
  // pause on its account); nats.js subscribes again on reconnect, and it counts again then.
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') {
        log(s.type === 'reconnect' ? 'info' : 'warn', `lattice connection ${s.type}${s.data ? ` (${String(s.data)})` : ''}: ${name}`);
      }
      if (s.type === 'disconnect') {
        disconnected = true;
        for (const v of versions) v.subscribers.out();
      } else if (s.type === 'reconnect') {
        disconnected = false;
        if (!paused) for (const v of versions) if (v.sub) v.subscribers.join();
      }
    }
  })();
  void nc.closed().then((err) => {
    log('error', `lattice connection closed${err ? ` (${err.message})` : ''}: ${name}; replacing this worker`);
    lost();
  });


  // Without a synchronous flush, calls wait here and each one is taken (and its taken reply
  // written by nats.js's own flush) one event-loop turn before its guest runs; one at a time,
  // so no call is acknowledged while it still waits behind another.
  const waiting: (() => boolean)[] = [];
  let draining = false;
  const runNext = () => {
    while (waiting.length > 0) {
      const next = waiting.shift()!;
      if (next()) {
        setImmediate(runNext);
        return;
      }
    }
    draining = false;
  };

  return {
    async serve(spec, call, stats, subscribers, live) {
      const { hostId: host, version } = spec;
      const answer = (msg: Msg, reply: InvokeReply, started: number, result?: CallResult, unserved = false) => {
        // The status compare is the only per-call cost of telling 5xx responses apart (canary analysis).
        if (reply.ok) stats.record(undefined, (performance.now() - started) / 1000, result?.cold, reply.response.status >= 500);
        else stats.record(reply.error.code, (performance.now() - started) / 1000, result?.cold, false, unserved);
        // No reply headers: who answered is in the body, and a header block on a reply costs the
        // caller a parse (and NATS an HMSG) on every call.
        if (msg.reply && !nc.isClosed()) msg.respond(encode(reply));
      };

      /**
       * Take the call, unless its attempt is (nearly) over: then it is dropped unanswered, since
       * its caller sends it again (or already has) and running it too would run it twice. A
       * taken call is acknowledged at once, and the acknowledgement must leave the process
       * before the guest runs: a synchronous guest holds the event loop, and nats.js only writes
       * what it buffered when the loop turns. See lattice/rpc/reply-mux.ts for why.
       */
      const take = (msg: Msg, times: CallHeaders, started: number): boolean => {
        if (!msg.reply) return true;
        if (times.attemptExpires !== undefined && times.attemptExpires - Date.now() < ATTEMPT_TAKE_MARGIN_MS) {
          stats.record('TRELLIS_TIMEOUT', (performance.now() - started) / 1000, undefined, false, true);
          return false;
        }
        // On its last attempt (it ends at the deadline) the caller sends nothing again, so
        // nothing can run twice: the acknowledgement would buy nothing.
        if (times.attemptExpires !== undefined && times.deadline !== undefined && times.attemptExpires >= times.deadline) return true;
        msg.respond(TAKEN_REPLY.body, { headers: TAKEN_REPLY.headers });
        return true;
      };

      const run = (msg: Msg, request: ActorRequest, times: CallHeaders, started: number) => {
        const result = call(request, { invocationId: times.invocationId ?? randomUUID(), deadlineAt: times.deadline, reply: msg.reply ?? '', traceparent: times.traceparent });
        if (!result) return; // the watchdog answered and this worker is going away
        answer(msg, result.error ? { ok: false, error: result.error, host, version } : { ok: true, response: result.response!, host, version }, started, result);
      };

      const guarded = (msg: Msg, fn: () => void) => {
        try {
          fn();
        } catch (err) {
          // A bug here must not take the worker down with calls waiting behind this one.
          answer(msg, failure('TRELLIS_INTERNAL', (err as Error).message ?? String(err), host, version), performance.now());
        }
      };

      const onCall = (msg: Msg) => {
        const started = performance.now();
        // Delivered before its actor was removed (a drain still running): dropped unanswered and
        // untaken, so the caller sends it again to a worker that still serves the version.
        if (!live()) return stats.record('TRELLIS_NOT_FOUND', 0, undefined, false, true);
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
        if (!syncFlush) {
          waiting.push(() => {
            if (!take(msg, times, started)) return false;
            setImmediate(() => guarded(msg, () => run(msg, request, times, started)));
            return true;
          });
          if (!draining) {
            draining = true;
            setImmediate(runNext);
          }
          return;
        }
        if (!take(msg, times, started)) return;
        flushNow(nc);
        run(msg, request, times, started);
      };

      const entry: Entry = {
        subscribers,
        subscribe: () => nc.subscribe(spec.subject, { queue: spec.queue, callback: (_err, msg) => guarded(msg, () => onCall(msg)) }),
      };
      versions.add(entry);
      if (!paused) entry.sub = entry.subscribe();
      // The server knows this member before the actor is reported started, and before another
      // worker may pause on its account.
      await nc.flush();
      if (entry.sub && versions.has(entry) && !disconnected) subscribers.join();
      return {
        async stop() {
          versions.delete(entry);
          subscribers.out();
          const sub = entry.sub;
          entry.sub = undefined;
          // A pause's drain may still be handling calls delivered before it: wait for it too.
          await Promise.all([sub?.drain().catch(() => {}), entry.drained]);
        },
      };
    },
    pause() {
      // Disconnected, nothing arrives anyway; each version must keep another subscriber.
      if (paused || disconnected || versions.size === 0 || !leaveAll([...versions].map((v) => v.subscribers))) return false;
      paused = true;
      // A drain: what the server sent before it read the UNSUBs is still handled, after this call.
      for (const v of versions) {
        const drained = v.sub?.drain().catch(() => {});
        if (drained) v.drained = v.drained ? Promise.all([v.drained, drained]).then(() => {}) : drained;
        v.sub = undefined;
      }
      flushNow(nc);
      return true;
    },
    resume() {
      if (!paused) return;
      paused = false;
      for (const v of versions) v.sub ??= v.subscribe();
      flushNow(nc);
      if (!disconnected) for (const v of versions) v.subscribers.join();
    },
  };
}

interface Entry {
  sub?: Subscription;
  /** The drains of this version's earlier subscriptions left by pauses (stop waits for them). */
  drained?: Promise<void>;
  subscribe(): Subscription;
  subscribers: Subscribers;
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

/** What a worker reads from a call's headers: its invocation id, trace context and two times (epoch ms). */
export interface CallHeaders {
  invocationId?: string;
  traceparent?: string;
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
    return { invocationId: h?.get(RpcHeaders.invocationId) || undefined, traceparent: h?.get(RpcHeaders.traceparent) || undefined, deadline: asTime(h?.get(RpcHeaders.deadline)), attemptExpires: asTime(h?.get(RpcHeaders.attemptExpires)), fast: false };
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
    else if (name === RpcHeaders.traceparent) times.traceparent = line.slice(colon + 1).trim() || undefined;
  }
  return times;
}

/** A progress reply ("still running"), its header encoded once: sent by workers and the watchdog. */
export const PROGRESS_REPLY = { body: new Uint8Array(0), headers: constantHeaders([[RpcHeaders.progress, '1']]) };
/** The taken reply a worker sends before it runs a call (progress too, for older callers). */
export const TAKEN_REPLY = { body: new Uint8Array(0), headers: constantHeaders([[RpcHeaders.progress, '1'], [RpcHeaders.taken, '1']]) };

/** The nats.js internals serving relies on, for the test that pins them (not for other use). */
export const natsFastPaths = { readHeaders, constantHeaders, flushNow, canFlushNow };
