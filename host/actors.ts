/**
 * The actor supervisor of a host: starts actor versions from artifacts (fetched by digest and
 * verified), runs them in the actor runtime, and serves each version as a NATS queue-group
 * subscription on its own subject, so NATS balances calls across hosts and prefers the local
 * cluster. Hosts report what runs here in inventory and events.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { TrellisError, toTrellisError } from '../lattice/errors/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import { digestOf, checkDigest, openArtifacts, type ArtifactStore } from '../lattice/state/index.ts';
import { token, versionToken, type Subjects } from '../lattice/subjects/index.ts';
import { decode, encode, isRecord, RpcHeaders, PROGRESS_EVERY_MS, PROGRESS_FIRST_MS, type ActorInventory, type ActorRequest, type ActorResponse, type EventData, type InvokeReply } from '../lattice/wire/index.ts';
import type { HostMetrics } from './metrics.ts';
import { compilePolicy, type ActorRuntime } from './runtime/index.ts';

/** A control request to start an actor version. */
export interface StartActorRequest {
  actor: string;
  version: string;
  digest: string;
  /** Instances (concurrent invocations) on this host. Default 1. */
  count?: number;
  /** Sandbox policy (raw form; validated here). */
  policy?: Record<string, unknown>;
}

interface Running {
  actor: string;
  version: string;
  digest: string;
  world: string;
  count: number;
  policy: Record<string, unknown>;
  sub: Subscription;
  startedAt: string;
  runtimeName: string;
  /** Invocations being served; stop waits for them before unloading. */
  inflight: Set<Promise<void>>;
}

/** What serving one version needs per call, prepared once when it starts. */
interface ServeContext {
  actor: string;
  version: string;
  /** Runtime name (actor@version). */
  key: string;
  /** Reply headers (host, version): the same on every reply, so built once. */
  replyHeaders: MsgHdrs;
  /** Metric children of the common case, so label sets are not hashed per call. */
  ok: { inc(): void };
  seconds: { observe(value: number): void };
}

/**
 * A body the worker thread can take cheaply. Decoded binaries are views into the NATS read
 * buffer (up to 64 KiB holding many messages under load), and posting a view to a worker clones
 * its whole backing buffer: a 64 B body then costs a 64 KiB copy per call.
 */
function compact(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

const NO_BODY = new Uint8Array(0);
const PROGRESS_HEADERS: MsgHdrs = (() => {
  const h = natsHeaders();
  h.set(RpcHeaders.progress, '1');
  return h;
})();

type Emit = <K extends keyof EventData>(kind: K, data: EventData[K]) => void;

/** Start, scale, stop and serve actors on one host. */
export class ActorSupervisor {
  private readonly running = new Map<string, Running>();
  private artifacts?: Promise<ArtifactStore>;

  constructor(
    private readonly hostId: string,
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly runtime: ActorRuntime,
    private readonly cacheDir: string,
    private readonly logger: Logger,
    private readonly metrics: HostMetrics,
    private readonly emit: Emit,
  ) {}

  /** What runs here, for inventory and heartbeats. */
  inventory(): ActorInventory[] {
    return [...this.running.values()].map((r) => ({
      name: r.actor,
      version: r.version,
      digest: r.digest,
      world: r.world,
      instances: r.count,
      maxConcurrency: r.count,
      startedAt: r.startedAt,
    }));
  }

  /** Fetch bytes by digest: local disk cache first, then the lattice object store (verified). */
  private async fetchArtifact(digest: string): Promise<Uint8Array> {
    const file = path.join(this.cacheDir, 'artifacts', `${digest.replace(':', '-')}.wasm`);
    try {
      const bytes = new Uint8Array(await readFile(file));
      if (digestOf(bytes) === digest) return bytes;
    } catch {
      // Not cached yet.
    }
    this.artifacts ??= openArtifacts(this.nc, this.subjects);
    const bytes = await (await this.artifacts).fetch(digest);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, bytes);
    return bytes;
  }

  /** Start an actor version (or change its count/policy if it already runs). */
  async start(request: Record<string, unknown>): Promise<ActorInventory> {
    const actor = token(String(request.actor ?? ''), 'actor name');
    const version = String(request.version ?? '');
    versionToken(version);
    const digest = checkDigest(String(request.digest ?? ''));
    const count = request.count === undefined ? 1 : Number(request.count);
    if (!Number.isInteger(count) || count < 1 || count > 256) throw new TrellisError('TRELLIS_BAD_REQUEST', `count must be an integer from 1 to 256, got ${String(request.count)}`);
    const rawPolicy = request.policy === undefined ? {} : request.policy;
    if (!isRecord(rawPolicy)) throw new TrellisError('TRELLIS_BAD_REQUEST', 'policy must be a map');
    const key = `${actor}@${version}`;
    const existing = this.running.get(key);
    if (existing && existing.digest !== digest) {
      throw new TrellisError('TRELLIS_BAD_REQUEST', `${key} already runs digest ${existing.digest}; stop it first or use another version`);
    }
    try {
      const bytes = await this.fetchArtifact(digest);
      const policy = compilePolicy({ ...rawPolicy, minInstances: Math.min(count, Number(rawPolicy.minInstances ?? count)), maxConcurrency: count });
      const loaded = await this.runtime.load({ name: key, bytes, policy });
      if (existing) {
        existing.count = count;
        existing.policy = rawPolicy;
      } else {
        const inflight = new Set<Promise<void>>();
        const replyHeaders = natsHeaders();
        replyHeaders.set(RpcHeaders.host, this.hostId);
        replyHeaders.set(RpcHeaders.version, version);
        const context: ServeContext = {
          actor,
          version,
          key,
          replyHeaders,
          ok: this.metrics.invocations.labels({ actor, version, result: 'ok' }),
          seconds: this.metrics.invocationSeconds.labels({ actor, version }),
        };
        const sub = this.nc.subscribe(this.subjects.rpc(actor, version), {
          queue: this.subjects.rpcQueue(actor, version),
          callback: (_err, msg) => {
            const serving = this.serve(context, msg);
            inflight.add(serving);
            void serving.finally(() => inflight.delete(serving));
          },
        });
        this.running.set(key, { actor, version, digest, world: loaded.world, count, policy: rawPolicy, sub, startedAt: new Date().toISOString(), runtimeName: key, inflight });
        // Make sure the server knows our interest before we say we are started.
        await this.nc.flush();
      }
      this.emit('actor_started', { hostId: this.hostId, actor, version, digest, instances: count });
      this.logger.info({ actor, version, digest, count }, 'actor started');
      return this.inventory().find((a) => a.name === actor && a.version === version)!;
    } catch (err) {
      const error = toTrellisError(err, 'TRELLIS_LOAD_FAILED');
      this.emit('actor_start_failed', { hostId: this.hostId, actor, version, error: error.toJSON() });
      this.logger.warn({ actor, version, digest, code: error.code, message: error.message }, 'actor start failed');
      throw error;
    }
  }

  /** Change how many instances of a running version this host keeps. */
  async scale(request: Record<string, unknown>): Promise<ActorInventory> {
    const key = `${String(request.actor)}@${String(request.version)}`;
    const running = this.running.get(key);
    if (!running) throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${key} does not run on host ${this.hostId}`);
    if (Number(request.count) === 0) {
      await this.stop({ actor: running.actor, version: running.version });
      return { ...this.inventoryOf(running), instances: 0 };
    }
    return this.start({ actor: running.actor, version: running.version, digest: running.digest, count: request.count, policy: running.policy });
  }

  private inventoryOf(r: Running): ActorInventory {
    return { name: r.actor, version: r.version, digest: r.digest, world: r.world, instances: r.count, maxConcurrency: r.count, startedAt: r.startedAt };
  }

  /** Stop one version, or every version of an actor when no version is given. */
  async stop(request: Record<string, unknown>, reason = 'stop requested'): Promise<{ stopped: string[] }> {
    const actor = String(request.actor ?? '');
    const version = request.version === undefined ? undefined : String(request.version);
    const targets = [...this.running.values()].filter((r) => r.actor === actor && (version === undefined || r.version === version));
    if (targets.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${actor}${version ? `@${version}` : ''} does not run on host ${this.hostId}`);
    for (const r of targets) {
      // Stop taking new calls first (drain hands over what NATS already delivered), then let
      // the calls being served finish before the instances go away.
      await r.sub.drain();
      await Promise.allSettled([...r.inflight]);
      this.running.delete(`${r.actor}@${r.version}`);
      await this.runtime.unload(r.runtimeName);
      this.emit('actor_stopped', { hostId: this.hostId, actor: r.actor, version: r.version, reason });
      this.logger.info({ actor: r.actor, version: r.version, reason }, 'actor stopped');
    }
    return { stopped: targets.map((r) => `${r.actor}@${r.version}`) };
  }

  /** Does this host run actor@version (for local-first calls)? */
  has(actor: string, version: string): boolean {
    return this.running.has(`${actor}@${version}`);
  }

  /** Run an invocation on this host's own instances, without NATS (local-first gateway). */
  async invokeLocal(actor: string, version: string, request: ActorRequest, deadlineMs: number): Promise<ActorResponse> {
    const key = `${actor}@${version}`;
    const started = performance.now();
    try {
      const response = await this.runtime.invoke(key, request, { deadlineMs });
      this.metrics.invocations.inc({ actor, version, result: 'ok' });
      return response;
    } catch (err) {
      const error = toTrellisError(err, 'TRELLIS_ACTOR_ERROR');
      this.metrics.invocations.inc({ actor, version, result: error.code });
      throw error;
    } finally {
      this.metrics.invocationSeconds.observe({ actor, version }, (performance.now() - started) / 1000);
    }
  }

  /** The sandbox's allowed outbound hosts of a runtime name (for the http-client provider). */
  allowedHosts(runtimeName: string): string[] {
    return this.runtime.list().find((a) => a.name === runtimeName)?.policy.allowedHosts ?? [];
  }

  /** Stop everything (host shutdown). */
  async stopAll(reason: string): Promise<void> {
    for (const r of [...this.running.values()]) await this.stop({ actor: r.actor, version: r.version }, reason).catch(() => {});
  }

  /** Serve one invocation message. Never throws: failures are error replies. */
  private async serve(context: ServeContext, msg: Msg): Promise<void> {
    const started = performance.now();
    const { actor, version, key } = context;
    let reply: InvokeReply;
    // A call that runs longer than a moment tells its caller it is alive (RpcHeaders.progress).
    let progress: NodeJS.Timeout | undefined;
    if (msg.reply) {
      const beat = () => {
        if (this.nc.isClosed()) return;
        msg.respond(NO_BODY, { headers: PROGRESS_HEADERS });
        progress = setTimeout(beat, PROGRESS_EVERY_MS);
      };
      progress = setTimeout(beat, PROGRESS_FIRST_MS);
    }
    try {
      const request = decode<ActorRequest>(msg.data, 'invocation');
      if (!isRecord(request) || !(request.body instanceof Uint8Array) || typeof request.method !== 'string') {
        throw new TrellisError('TRELLIS_BAD_REQUEST', 'invocation body must be a msgpack ActorRequest map');
      }
      const deadlineHeader = msg.headers?.get(RpcHeaders.deadline);
      const deadlineMs = deadlineHeader ? Number(deadlineHeader) - Date.now() : undefined;
      if (deadlineMs !== undefined && deadlineMs <= 0) throw new TrellisError('TRELLIS_DEADLINE_EXCEEDED', `deadline passed before ${key} ran`);
      request.body = compact(request.body);
      const response = await this.runtime.invoke(key, request, { deadlineMs });
      reply = { ok: true, response };
    } catch (err) {
      reply = { ok: false, error: toTrellisError(err, 'TRELLIS_ACTOR_ERROR').toJSON() };
    }
    clearTimeout(progress);
    if (reply.ok) context.ok.inc();
    else this.metrics.invocations.inc({ actor, version, result: reply.error.code });
    context.seconds.observe((performance.now() - started) / 1000);
    if (!msg.reply) return;
    msg.respond(encode(reply), { headers: context.replyHeaders });
  }
}
