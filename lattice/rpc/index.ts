/**
 * The RPC client: invoke any actor by name from anywhere in the lattice. It picks a version by
 * the current weights (smooth weighted round robin over versions that have live instances),
 * sends a NATS request to that version's queue group, and within the deadline retries: on
 * no-responders (the server's immediate 503) it moves to another version at once; on a
 * per-attempt timeout it tries again (NATS picks another replica), then other versions. An
 * attempt a worker has acknowledged as taken is never sent again while that worker lives (see
 * reply-mux.ts). Every invocation gets its own id, the same on all its attempts.
 *
 * The folder's only entry: picker.ts (weighted round robin), plan.ts (version order and shares)
 * and reply-mux.ts (request/reply with taken and progress replies) are pure or self-contained.
 */
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from 'nats';
import { TrellisError, fromNatsError, fromWire, toTrellisError } from '../errors/index.ts';
import type { WindowAccumulator } from '../metrics/index.ts';
import { newTraceparent, type SpanHandle, type Tracing } from '../telemetry/index.ts';
import { openWeights, type ActorWeights, type Sticky, type WeightStore } from '../weights/index.ts';
import { subjects as buildSubjects, token, versionToken, type Subjects } from '../subjects/index.ts';
import { decode, encode, RpcHeaders, type ActorRequest, type ActorResponse, type InvocationRef, type InvokeReply } from '../wire/index.ts';
import { invocationIdFor } from './ids.ts';
import { WeightedPicker } from './picker.ts';
import { effectiveShares, planBase, planOrder, type PlanBase } from './plan.ts';
import { callDeadlineMs, compileRpcOptions } from './options.ts';
import { ReplyMux } from './reply-mux.ts';
import { watchLattice, type LatticeView } from './view.ts';

export type { LatticeView } from './view.ts';

/** Options of one invocation. */
export interface InvokeOptions {
  /** Total time budget in ms, all attempts included. Default: the client's deadlineMs. */
  deadlineMs?: number;
  /**
   * Pin a version instead of following the weights. A version that runs nowhere fails with
   * TRELLIS_UNKNOWN_VERSION; one that is known (weighted, or seen running) but has no live
   * instance fails with TRELLIS_NO_RESPONDERS.
   */
  version?: string;
  /**
   * A sticky key (a user, a session): the version is chosen by the key's bucket against the
   * weights instead of the round robin, so the key stays on one version while the split holds.
   */
  stickyKey?: string;
  /** W3C traceparent to continue; a new trace is started when absent. */
  traceparent?: string;
  /**
   * The client's own request id (the gateway's x-request-id), sent along for logs. Never the
   * invocation id: that one Trellis generates for every invocation, because capability writes
   * are de-duplicated by it, and a client's ids are not unique.
   */
  requestId?: string;
  /**
   * The invocation (and its host call) making this call, when an actor calls another: the
   * callee's invocation id is derived from it, so a retried caller repeats it (see ids.ts).
   */
  parent?: InvocationRef;
}

/** A response with where and how it was produced. */
export interface InvokeResult {
  response: ActorResponse;
  actor: string;
  version: string;
  hostId: string;
  attempts: number;
  latencyMs: number;
  /** Generated for this invocation; every attempt carried it. */
  invocationId: string;
}

/** Options of the client. */
export interface RpcClientOptions {
  lattice: string;
  /** Who is calling (host id, `gateway`, `cli`...), sent in the caller header. */
  caller?: string;
  /** Default deadline per invocation. Default 10000 ms. */
  deadlineMs?: number;
  /**
   * Longest single attempt before trying another replica. Default 2000 ms. The first attempt
   * waits less when the actor is known to be fast: 20× its recent latency, at least
   * minAttemptTimeoutMs, doubling on each time-out, so a replica that died mid-call costs
   * about that much instead of the full attempt time-out.
   */
  attemptTimeoutMs?: number;
  /** Floor of the adaptive attempt time-out (10x the hosts' first progress reply). Default 500 ms. */
  minAttemptTimeoutMs?: number;
  /** Instances in this process: used before the lattice when they run the chosen version. */
  local?: LocalInvoker;
  /**
   * Where this caller counts the invocations that failed without reaching any host (no
   * responders, deadline), for canary analysis; hosts count everything they served.
   */
  traffic?: WindowAccumulator;
  /**
   * When set, each invocation is a client span (its attempts, retries and failovers are span
   * events) and the hosts' spans are its children. Absent: no span work at all, only the
   * traceparent is carried.
   */
  tracing?: Tracing;
}

/** Actor instances in the caller's own process (a host running the gateway in-process). */
export interface LocalInvoker {
  readonly hostId: string;
  has(actor: string, version: string): boolean;
  /** The versions of an actor running here. */
  versions(actor: string): readonly string[];
  invoke(actor: string, version: string, request: ActorRequest, deadlineMs: number, invocationId: string, traceparent: string): Promise<ActorResponse>;
}

/** Local failures that say nothing about the request: the lattice may still serve it. */
const LOCAL_FALLBACK_CODES = new Set(['TRELLIS_OVERLOADED', 'TRELLIS_NOT_FOUND', 'TRELLIS_INTERNAL']);

/** Invoke actors by name. */
export interface RpcClient extends AsyncDisposable {
  invoke(actor: string, request: ActorRequest, options?: InvokeOptions): Promise<InvokeResult>;
  /** Current weights of an actor as callers apply them, with the versions that are live. */
  routeStatus(actor: string): { weights?: Record<string, number>; live: readonly string[]; effective: Record<string, number> };
  /** Where the actor's sticky keys come from, per its weights document. */
  stickyOf(actor: string): Sticky | undefined;
  readonly weights: WeightStore;
  readonly view: LatticeView;
  close(): Promise<void>;
}

/** How long a caller keeps retrying when every version answers no-responders. */
const NO_RESPONDERS_WINDOW_MS = 500;

/** Create an RPC client on a connection; it watches routes and the lattice until closed. */
export async function createRpcClient(nc: NatsConnection, options: RpcClientOptions): Promise<RpcClient> {
  const compiled = compileRpcOptions(options);
  const subjects: Subjects = buildSubjects(compiled.lattice);
  const { deadlineMs: defaultDeadlineMs, attemptTimeoutMs, minAttemptTimeoutMs } = compiled;
  // Smoothed latency of successful calls per actor, for the adaptive attempt time-out.
  const latencyEwma = new Map<string, number>();
  const firstAttemptTimeout = (actor: string) => {
    const ewma = latencyEwma.get(actor);
    return ewma === undefined ? attemptTimeoutMs : Math.min(attemptTimeoutMs, Math.max(minAttemptTimeoutMs, 20 * ewma));
  };
  const { caller } = compiled;
  const weightStore = await openWeights(nc, subjects);
  const weightsByActor = new Map<string, ActorWeights>();
  const stopWatch = await weightStore.follow((actor, route) => {
    if (route) weightsByActor.set(actor, route);
    else weightsByActor.delete(actor);
  });
  const view = watchLattice(nc, subjects);
  const pickers = new Map<string, WeightedPicker>();
  const mux = new ReplyMux(nc);
  // Subjects per actor and version, validated once: building one checks two tokens by regex.
  const rpcSubjects = new Map<string, Map<string, string>>();
  const rpcSubject = (actor: string, version: string): string => {
    let byVersion = rpcSubjects.get(actor);
    if (!byVersion) {
      // Bounded: callers may pin arbitrary (valid) versions.
      if (rpcSubjects.size >= 1024) rpcSubjects.clear();
      rpcSubjects.set(actor, (byVersion = new Map()));
    }
    if (byVersion.size >= 1024) byVersion.clear();
    let subject = byVersion.get(version);
    if (subject === undefined) byVersion.set(version, (subject = subjects.rpc(actor, version)));
    return subject;
  };

  // What plan() derives from the live versions and the weights, kept until either changes
  // (by identity: the view returns the same array, a route update replaces the weights).
  const planBases = new Map<string, PlanBase>();
  const planBaseOf = (actor: string) => {
    const live = view.liveVersions(actor);
    const doc = weightsByActor.get(actor);
    const weights = doc?.weights;
    let base = planBases.get(actor);
    // A new document always brings a new weights object, sticky canary included.
    if (!base || base.live !== live || base.weights !== weights) planBases.set(actor, (base = planBase(live, weights, doc?.sticky?.canary)));
    return base;
  };

  /** Versions to try, in order (see planOrder); just the pinned one when a version is pinned. */
  function plan(actor: string, pinned?: string, stickyKey?: string): readonly string[] {
    if (pinned) return [pinned];
    let picker = pickers.get(actor);
    if (!picker) pickers.set(actor, (picker = new WeightedPicker()));
    return planOrder(planBaseOf(actor), picker, stickyKey);
  }

  /**
   * The error for a pinned version the view does not show live, should NATS confirm that
   * nobody serves it: TRELLIS_UNKNOWN_VERSION when it runs nowhere (neither weighted nor ever
   * seen running), else TRELLIS_NO_RESPONDERS. Undefined when it is live. The call is still
   * sent once, since instances started a moment ago may not have reached the view yet.
   */
  async function pinnedAbsence(actor: string, version: string): Promise<TrellisError | undefined> {
    if (view.liveVersions(actor).includes(version)) return undefined;
    // A fresh caller may not have heard from the lattice yet.
    await view.ready();
    const live = view.liveVersions(actor);
    if (live.includes(version)) return undefined;
    const weighted = weightsByActor.get(actor)?.weights;
    if ((weighted && Object.hasOwn(weighted, version)) || view.knownVersions(actor).includes(version)) {
      return new TrellisError('TRELLIS_NO_RESPONDERS', `actor "${actor}" version ${version} has no live instance in lattice ${options.lattice}`);
    }
    return new TrellisError('TRELLIS_UNKNOWN_VERSION', `actor "${actor}" version ${version} runs nowhere in lattice ${options.lattice} (running: ${live.join(', ') || 'none'})`);
  }

  /** Count a failure that never reached a host (hosts count what they served). */
  function countCallerFailure(actor: string, version: string | undefined, started: number): void {
    if (!options.traffic || version === undefined) return;
    options.traffic.add(actor, version, 1, 1, [performance.now() - started]);
  }

  const { tracing } = options;
  function invoke(actor: string, request: ActorRequest, opts: InvokeOptions = {}): Promise<InvokeResult> {
    // Trace ids come from a random pool (see telemetry/traceparent.ts): cheap when tracing is off.
    if (!tracing) return invokeTraced(actor, request, opts, opts.traceparent ?? newTraceparent(), undefined);
    const span = tracing.span(`invoke ${actor}`, { kind: 'client', parent: opts.traceparent, attributes: { 'trellis.actor': actor, 'trellis.caller': caller } });
    return invokeTraced(actor, request, opts, span.traceparent, span).then(
      (result) => {
        span.attributes({ 'trellis.version': result.version, 'trellis.host_id': result.hostId, 'trellis.attempts': result.attempts, 'trellis.invocation_id': result.invocationId });
        span.end();
        return result;
      },
      (err: unknown) => {
        span.fail(toTrellisError(err));
        span.end();
        throw err;
      },
    );
  }

  async function invokeTraced(actor: string, request: ActorRequest, opts: InvokeOptions, traceparent: string, span: SpanHandle | undefined): Promise<InvokeResult> {
    const started = performance.now();
    if (!rpcSubjects.has(actor)) token(actor, 'actor name');
    if (opts.version !== undefined && !rpcSubjects.get(actor)?.has(opts.version)) versionToken(opts.version);
    const deadlineMs = callDeadlineMs(opts.deadlineMs, defaultDeadlineMs);
    const deadline = Date.now() + deadlineMs;
    // A pinned call to a live version (the common case) does not wait a turn for the check.
    const absent = opts.version === undefined || view.liveVersions(actor).includes(opts.version) ? undefined : await pinnedAbsence(actor, opts.version);
    let versions = plan(actor, opts.version, opts.stickyKey);
    if (versions.length === 0) {
      // A fresh caller may not have heard from the lattice yet.
      await view.ready();
      versions = plan(actor, opts.version, opts.stickyKey);
      // Instances this process started a moment ago serve before the lattice's beats list
      // them (a deploy that just finished must not answer 503 from its own host).
      if (versions.length === 0 && options.local) versions = options.local.versions(actor);
      if (versions.length === 0) {
        throw new TrellisError('TRELLIS_NO_RESPONDERS', `no live instance of actor "${actor}" in lattice ${options.lattice} (unknown actor, or none started: \`trellis get actors\`)`);
      }
    }
    const invocationId = invocationIdFor(opts.parent);
    const body = encode(request);
    // The same metadata on every attempt, so the headers are built once.
    let h: MsgHdrs | undefined;
    let attempts = 0;
    let lastError: TrellisError | undefined;
    const tried = new Set<string>();
    let index = 0;
    let timeoutsOnVersion = 0;
    let noRespondersSince: number | undefined;
    let attemptTimeout = firstAttemptTimeout(actor);
    let localFailed = false;
    while (true) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const version = versions[index % versions.length]!;
      if (options.local?.has(actor, version) && !localFailed) {
        attempts += 1;
        span?.event('attempt', { attempt: attempts, version, local: true });
        try {
          const response = await options.local.invoke(actor, version, request, remaining, invocationId, traceparent);
          return { response, actor, version, hostId: options.local.hostId, attempts, latencyMs: performance.now() - started, invocationId };
        } catch (err) {
          const error = toTrellisError(err);
          if (!LOCAL_FALLBACK_CODES.has(error.code)) throw error;
          // The local instance could not take it: the rest of the lattice can.
          localFailed = true;
          span?.event('local_refused', { version, code: error.code });
        }
      }
      if (!h) {
        h = natsHeaders();
        h.set(RpcHeaders.invocationId, invocationId);
        h.set(RpcHeaders.deadline, String(deadline));
        h.set(RpcHeaders.traceparent, traceparent);
        h.set(RpcHeaders.caller, caller);
        if (opts.requestId !== undefined) h.set(RpcHeaders.requestId, opts.requestId);
      }
      attempts += 1;
      try {
        const attemptStarted = performance.now();
        const attemptMs = Math.min(remaining, attemptTimeout);
        span?.event('attempt', { attempt: attempts, version, timeout_ms: attemptMs });
        h.set(RpcHeaders.attemptExpires, String(Date.now() + attemptMs));
        const msg = await mux.request(rpcSubject(actor, version), body, h, attemptMs, `actor ${actor}@${version}`, remaining);
        const reply = decode<InvokeReply>(msg.data, 'invocation reply');
        if (!reply.ok) {
          const error = fromWire(reply.error);
          // Overload is about that replica, not the request: try elsewhere.
          if (error.code !== 'TRELLIS_OVERLOADED') throw error;
          lastError = error;
          span?.event('retry', { attempt: attempts, version, code: error.code });
        } else {
          const took = performance.now() - attemptStarted;
          const previous = latencyEwma.get(actor);
          latencyEwma.set(actor, previous === undefined ? took : previous * 0.9 + took * 0.1);
          return {
            response: reply.response,
            actor,
            version: reply.version ?? version,
            hostId: reply.host ?? '',
            attempts,
            latencyMs: performance.now() - started,
            invocationId,
          };
        }
      } catch (err) {
        const error = fromNatsError(err, `actor ${actor}@${version}`);
        if (error.code !== 'TRELLIS_NO_RESPONDERS' && error.code !== 'TRELLIS_TIMEOUT' && error.code !== 'TRELLIS_OVERLOADED') throw error;
        lastError = error;
        span?.event('retry', { attempt: attempts, version, code: error.code });
        if (error.code === 'TRELLIS_NO_RESPONDERS') {
          // A pinned version the view does not show: NATS confirms it, no retry window.
          if (absent) throw absent;
          // Nobody serves this version right now: move on at once, never wait for a timeout.
          tried.add(version);
          noRespondersSince ??= Date.now();
          if (tried.size < versions.length) {
            index += 1;
            span?.event('failover', { from: version, to: versions[index % versions.length]! });
            continue;
          }
          // Every candidate was empty. During a failover, interest moves between clusters in
          // milliseconds, so keep trying briefly; past that window the actor is simply not running.
          if (Date.now() - noRespondersSince > NO_RESPONDERS_WINDOW_MS) break;
          await new Promise((r) => setTimeout(r, Math.min(25, Math.max(0, deadline - Date.now()))));
          const fresh = plan(actor, opts.version, opts.stickyKey);
          if (fresh.length > 0) versions = fresh;
          tried.clear();
          index = 0;
          continue;
        }
        noRespondersSince = undefined;
        // A timeout: the replica may be dead. One more try on the same version (NATS picks a
        // replica again), then the next version.
        timeoutsOnVersion += 1;
        attemptTimeout = Math.min(attemptTimeout * 2, attemptTimeoutMs);
        if (timeoutsOnVersion >= 2) {
          timeoutsOnVersion = 0;
          index += 1;
          span?.event('failover', { from: version, to: versions[index % versions.length]! });
        }
      }
    }
    // Every attempt went unanswered or unserved: no host counted it, so the caller does, for the
    // version it meant to reach. (A call a host took and ran past the deadline is counted by the
    // host too: it errs toward failure, never toward success.)
    countCallerFailure(actor, versions[0], started);
    if (lastError?.code === 'TRELLIS_NO_RESPONDERS') {
      throw new TrellisError('TRELLIS_NO_RESPONDERS', `no instance of actor "${actor}" answered (${attempts} attempts, versions ${versions.join(', ')})`);
    }
    throw new TrellisError('TRELLIS_DEADLINE_EXCEEDED', `actor "${actor}" did not answer within ${deadlineMs} ms (${attempts} attempts)`, { cause: lastError });
  }

  async function close(): Promise<void> {
    stopWatch();
    view.close();
    mux.close();
  }

  return {
    invoke,
    weights: weightStore,
    view,
    routeStatus(actor) {
      const base = planBaseOf(actor);
      return { weights: base.weights, live: base.live, effective: effectiveShares(base) };
    },
    stickyOf: (actor) => weightsByActor.get(actor)?.sticky,
    close,
    [Symbol.asyncDispose]: close,
  };
}
