/**
 * The actor supervisor of a host: starts actor versions from artifacts (fetched by digest and
 * verified), runs them in the actor runtime, and serves each version as a NATS queue group on
 * its own subject, so NATS balances calls across hosts and prefers the local cluster. Every
 * shared worker of the host is a member of every served version's group, on its one connection,
 * and answers directly (see runtime/lattice-serve.ts); this supervisor answers for a worker only
 * when it cannot:
 * progress replies during a long call, and the error of a call the watchdog ended. Hosts report
 * what runs here in inventory and events.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from 'nats';
import { TrellisError, toTrellisError } from '../lattice/errors/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import type { NatsConnect } from '../lattice/options/index.ts';
import { openArtifacts, openOnce } from '../lattice/state/index.ts';
import { componentHashes, policyBeyondCaps, type Capability } from '../lattice/signing/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';
import { encode, type ActorInventory, type ActorRequest, type ActorResponse, type ControlRequest, type EventData, type InvokeReply, type Owner } from '../lattice/wire/index.ts';
import { observe } from '../lattice/canary/histogram.ts';
import type { VersionCounts } from '../lattice/metrics/index.ts';
import type { HostMetrics } from './metrics.ts';
import type { ComponentTrust, Vouched } from './signing.ts';
import { compilePolicy, PROGRESS_REPLY, type ActorRuntime, type ActorStats, type LatticeServing } from './runtime/index.ts';

interface Running {
  actor: string;
  version: string;
  digest: string;
  world: string;
  count: number;
  policy: Record<string, unknown>;
  startedAt: string;
  runtimeName: string;
  /** The app revision that placed these instances; absent when started by hand. */
  owner?: Owner;
  /** What its signature lets it use; absent when the host checks no signatures. */
  caps?: ReadonlySet<Capability>;
}

/**
 * Why `wanted` may not take over instances held by `held` (undefined: it may). An app owns what
 * it placed: another app, or a hand command, may not take them over, nor may an app take over
 * hand-started instances. A newer revision of the same app takes them over (rolling updates);
 * an older one is a deposed leader's stale plan and is refused.
 */
export function ownershipConflict(key: string, held: Owner | undefined, wanted: Owner | undefined): string | undefined {
  if (held === undefined && wanted === undefined) return undefined;
  if (held === undefined) return `${key} runs here started by hand; app ${wanted!.app} may not take it over (stop it first, or use another version)`;
  if (wanted === undefined) return `${key} is owned by app ${held.app} (revision ${held.revision}); change the app or delete it (\`trellis delete app ${held.app}\`) instead`;
  if (held.app !== wanted.app) return `${key} is owned by app ${held.app} (revision ${held.revision}); app ${wanted.app} may not take it over`;
  if (wanted.revision < held.revision) return `${key} is owned by app ${held.app} at revision ${held.revision}, newer than ${wanted.revision}`;
  return undefined;
}


type Emit = <K extends keyof EventData>(kind: K, data: EventData[K]) => void;

/** Start, scale, stop and serve actors on one host. */
export class ActorSupervisor {
  private readonly running = new Map<string, Running>();
  /** Per actor name, the command in progress: commands on one actor run one after another. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly artifacts = openOnce(() => openArtifacts(this.nc, this.subjects));

  constructor(
    private readonly hostId: string,
    /** Host name, for naming the workers' NATS connections. */
    private readonly hostName: string,
    /** How the workers connect: the host's own servers, credential and TLS. */
    private readonly connect: NatsConnect,
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly runtime: ActorRuntime,
    private readonly cacheDir: string,
    private readonly logger: Logger,
    private readonly metrics: HostMetrics,
    private readonly emit: Emit,
    /** Which components may run (signatures); absent: all. */
    private readonly trust?: ComponentTrust,
  ) {}

  /** What runs here, for inventory and heartbeats. */
  inventory(): ActorInventory[] {
    return [...this.running.values()].map((r) => this.inventoryOf(r));
  }

  /**
   * Fetch bytes by digest: local disk cache first, then the lattice object store (verified).
   * From the cache, the digest check also yields the hash signed claims cover (one pass).
   */
  private async fetchArtifact(digest: string): Promise<{ bytes: Uint8Array; unsignedHash?: string }> {
    const file = path.join(this.cacheDir, 'artifacts', `${digest.replace(':', '-')}.wasm`);
    try {
      const bytes = new Uint8Array(await readFile(file));
      const hashes = componentHashes(bytes);
      if (hashes.digest === digest) return { bytes, unsignedHash: hashes.unsignedHash };
    } catch {
      // Not cached yet.
    }
    const bytes = await (await this.artifacts.get()).fetch(digest);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, bytes);
    return { bytes };
  }

  /**
   * Run `command` after the commands on the same actor before it: two starts of one version
   * (say, from an old and a new controller leader) must not both load it; the second sees the
   * first's instances and resizes or refuses.
   */
  private serial<T>(actor: string, command: () => Promise<T>): Promise<T> {
    const before = this.queues.get(actor) ?? Promise.resolve();
    const run = before.then(command, command);
    const tail = run.catch(() => undefined);
    this.queues.set(actor, tail);
    void tail.then(() => {
      if (this.queues.get(actor) === tail) this.queues.delete(actor);
    });
    return run;
  }

  /** Start an actor version (or change its count/policy if it already runs). */
  start(request: Omit<ControlRequest<'actorStart'>, 'lattice'>): Promise<ActorInventory> {
    return this.serial(request.actor, () => this.startNow(request));
  }

  /** Change how many instances of a running version this host keeps. */
  scale(request: Omit<ControlRequest<'actorScale'>, 'lattice'>): Promise<ActorInventory> {
    return this.serial(request.actor, () => this.scaleNow(request));
  }

  /** Stop one version, or every version of an actor (see stopNow). */
  stop(request: Omit<ControlRequest<'actorStop'>, 'lattice'>, reason = 'stop requested'): Promise<{ stopped: string[] }> {
    return this.serial(request.actor, () => this.stopNow(request, reason));
  }

  private async startNow(request: Omit<ControlRequest<'actorStart'>, 'lattice'>): Promise<ActorInventory> {
    const { actor, version, digest, count = 1, policy: rawPolicy = {}, owner } = request;
    const key = `${actor}@${version}`;
    const existing = this.running.get(key);
    const conflict = existing && ownershipConflict(key, existing.owner, owner);
    if (conflict) throw new TrellisError('TRELLIS_CONFLICT', conflict);
    if (existing && existing.digest !== digest) {
      throw new TrellisError('TRELLIS_BAD_REQUEST', `${key} already runs digest ${existing.digest}; stop it first or use another version`);
    }
    try {
      const policy = compilePolicy({ ...rawPolicy, minInstances: Math.min(count, Number(rawPolicy.minInstances ?? count)), maxConcurrency: count });
      // Memory is bounded by policy, not by a cap on the count: every instance may grow to its
      // policy's page limit, and together they must fit this machine.
      const worstCaseBytes = count * policy.maxMemoryPages * 65_536;
      if (worstCaseBytes > os.totalmem()) {
        throw new TrellisError(
          'TRELLIS_BAD_REQUEST',
          `${count} instances of ${key} may use up to ${Math.ceil(worstCaseBytes / 2 ** 20)} MiB (maxMemoryPages ${policy.maxMemoryPages} each), more than this host's ${Math.floor(os.totalmem() / 2 ** 20)} MiB: lower maxMemoryPages in the policy or the count`,
        );
      }
      const beyond = existing?.caps && policyBeyondCaps(policy, existing.caps);
      if (beyond) throw new TrellisError('TRELLIS_CAPABILITY_DENIED', beyond);
      // Every start and resize is checked against the host's trust as it is now: an actor that
      // started before issuers were set, or whose claims expired or issuer was removed since,
      // must not be scaled up unchecked. Before anything of it runs: unsigned, tampered, expired
      // or untrusted never loads.
      let artifact: { bytes: Uint8Array; unsignedHash?: string } | undefined;
      let vouched: Vouched | undefined;
      const enforcing = this.trust?.enforcing() ?? false;
      if (existing && enforcing) {
        artifact = await this.fetchArtifact(digest);
        vouched = await this.trust!.check(artifact.bytes, artifact.unsignedHash, policy);
      }
      // Only the count changed: resize in place, keeping the warm instances (and not reading
      // the artifact again), unless the instances' signed bound must change (loaded unsigned,
      // signed and trusted now): that takes a load.
      const sameBound = !enforcing || (vouched !== undefined) === (existing?.caps !== undefined);
      if (existing && sameBound && (await this.runtime.rescale(key, policy))) {
        existing.count = count;
        existing.policy = rawPolicy;
        existing.owner = owner;
        this.emit('actor_started', { hostId: this.hostId, actor, version, digest, instances: count });
        this.logger.info({ actor, version, digest, count }, 'actor scaled');
        return this.inventoryOf(existing);
      }
      if (!artifact) {
        artifact = await this.fetchArtifact(digest);
        vouched = await this.trust?.check(artifact.bytes, artifact.unsignedHash, policy);
      }
      const { bytes } = artifact;
      // Resolves once every worker is subscribed: the server knows our interest before we say
      // we are started. A reload (scale, policy) subscribes the new workers before the old
      // ones drain, so the version never stops answering.
      const loaded = await this.runtime.load({ name: key, actor, version, bytes, policy, serve: this.serving(actor, version), ...(vouched ? { caps: vouched.caps } : {}) });
      if (existing) {
        existing.count = count;
        existing.policy = rawPolicy;
        existing.owner = owner;
        existing.caps = vouched?.caps;
      } else {
        this.running.set(key, { actor, version, digest, world: loaded.world, count, policy: rawPolicy, startedAt: new Date().toISOString(), runtimeName: key, ...(owner ? { owner } : {}), ...(vouched ? { caps: vouched.caps } : {}) });
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

  private async scaleNow(request: Omit<ControlRequest<'actorScale'>, 'lattice'>): Promise<ActorInventory> {
    const key = `${request.actor}@${request.version}`;
    const running = this.running.get(key);
    if (!running) throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${key} does not run on host ${this.hostId}`);
    const conflict = ownershipConflict(key, running.owner, request.owner);
    if (conflict) throw new TrellisError('TRELLIS_CONFLICT', conflict);
    if (request.count === 0) {
      await this.stopNow({ actor: running.actor, version: running.version, owner: request.owner }, 'stop requested');
      return { ...this.inventoryOf(running), instances: 0 };
    }
    const { owner } = request;
    return this.startNow({ actor: running.actor, version: running.version, digest: running.digest, count: request.count, policy: running.policy, ...(owner ? { owner } : {}) });
  }

  private inventoryOf(r: Running): ActorInventory {
    let busy = 0;
    try {
      busy = this.runtime.stats(r.runtimeName).busy;
    } catch {
      // Being replaced by a reload this moment.
    }
    const inv: ActorInventory = { name: r.actor, version: r.version, digest: r.digest, world: r.world, instances: r.count, busy, maxConcurrency: r.count, startedAt: r.startedAt };
    return r.owner ? { ...inv, owner: { ...r.owner } } : inv;
  }

  /**
   * Stop one version, or every version of an actor when no version is given. With an owner, only
   * what that app owns (another app's or hand-started instances are left alone); without one, a
   * hand stop, which stops app-owned instances too (the operator's override; the app's
   * reconciler places them again).
   */
  private async stopNow(request: Omit<ControlRequest<'actorStop'>, 'lattice'>, reason: string): Promise<{ stopped: string[] }> {
    const { actor, version, owner } = request;
    const matching = [...this.running.values()].filter((r) => r.actor === actor && (version === undefined || r.version === version));
    const targets = owner ? matching.filter((r) => r.owner?.app === owner.app) : matching;
    if (targets.length === 0 && matching.length > 0) {
      throw new TrellisError('TRELLIS_CONFLICT', `actor ${actor}${version ? `@${version}` : ''} on host ${this.hostId} is not owned by app ${owner!.app}`);
    }
    if (targets.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${actor}${version ? `@${version}` : ''} does not run on host ${this.hostId}`);
    for (const r of targets) {
      // Unloading drains the workers' subscriptions first: the calls NATS already delivered
      // are answered before the instances go away.
      this.running.delete(`${r.actor}@${r.version}`);
      await this.runtime.unload(r.runtimeName);
      this.emit('actor_stopped', { hostId: this.hostId, actor: r.actor, version: r.version, reason });
      this.logger.info({ actor: r.actor, version: r.version, reason }, 'actor stopped');
    }
    return { stopped: targets.map((r) => `${r.actor}@${r.version}`) };
  }

  /**
   * Check everything running against the host's trust as it is now (the allowed issuers changed,
   * claims may have expired), and stop what fails, with the refusal as the actor_stopped reason.
   * An instance loaded unsigned that is now signed and trusted is reloaded with its signed bound
   * (until then it may use no capability: see capabilities.ts).
   */
  async recheck(): Promise<void> {
    if (!this.trust) return;
    for (const r of [...this.running.values()]) {
      const key = `${r.actor}@${r.version}`;
      await this.serial(r.actor, async () => {
        if (this.running.get(key) !== r) return; // stopped or replaced meanwhile
        let vouched: Vouched | undefined;
        try {
          const { bytes, unsignedHash } = await this.fetchArtifact(r.digest);
          vouched = await this.trust!.check(bytes, unsignedHash, compilePolicy(r.policy));
        } catch (err) {
          const error = toTrellisError(err);
          // Unreachable KV or object store says nothing about the component: check again later.
          if (error.code === 'TRELLIS_NATS_UNAVAILABLE' || error.code === 'TRELLIS_TIMEOUT') return;
          this.logger.warn({ actor: r.actor, version: r.version, code: error.code, message: error.message }, 'running actor no longer trusted; stopping it');
          await this.stopNow({ actor: r.actor, version: r.version }, `no longer trusted: ${error.code}: ${error.message}`);
          return;
        }
        if (vouched && r.caps === undefined) {
          await this.startNow({ actor: r.actor, version: r.version, digest: r.digest, count: r.count, policy: r.policy, ...(r.owner ? { owner: r.owner } : {}) }).catch(() => {});
        }
      });
    }
  }

  /** Each running version's pool counters, for metrics at scrape time. */
  pools(): { actor: string; version: string; stats: ActorStats }[] {
    const out: { actor: string; version: string; stats: ActorStats }[] = [];
    for (const r of this.running.values()) {
      try {
        out.push({ actor: r.actor, version: r.version, stats: this.runtime.stats(r.runtimeName) });
      } catch {
        // Unloading right now: gone from the next scrape.
      }
    }
    return out;
  }

  /** Does this host run actor@version (for local-first calls)? */
  has(actor: string, version: string): boolean {
    return this.running.has(`${actor}@${version}`);
  }

  /** The versions of an actor this host runs (a local-first caller's fallback before the lattice view lists them). */
  versionsOf(actor: string): string[] {
    const out: string[] = [];
    for (const r of this.running.values()) if (r.actor === actor) out.push(r.version);
    return out;
  }

  /** Run an invocation on this host's own instances, without NATS (local-first gateway). */
  async invokeLocal(actor: string, version: string, request: ActorRequest, deadlineMs: number, invocationId: string, traceparent?: string): Promise<ActorResponse> {
    const key = `${actor}@${version}`;
    const counted = this.countersOf(actor, version);
    const started = performance.now();
    const traffic = counted.traffic;
    try {
      const response = await this.runtime.invoke(key, request, { deadlineMs, invocationId, traceparent });
      counted.ok.inc();
      traffic.requests++;
      if (response.status >= 500) traffic.failures++;
      return response;
    } catch (err) {
      const error = toTrellisError(err, 'TRELLIS_ACTOR_ERROR');
      this.metrics.invocations.inc({ actor, version, result: error.code });
      // A refusal the caller retries on the lattice is not a served request.
      if (error.code !== 'TRELLIS_OVERLOADED') traffic.requests++, traffic.failures++;
      throw error;
    } finally {
      const ms = performance.now() - started;
      counted.seconds.observe(ms / 1000);
      observe(traffic.histogram, ms);
    }
  }

  private readonly counters = new Map<string, { ok: { inc(n?: number): void }; seconds: { observe(v: number): void }; traffic: VersionCounts }>();
  /** Metric children of actor@version's common case, so no call hashes a label set. */
  private countersOf(actor: string, version: string) {
    const key = `${actor}@${version}`;
    let c = this.counters.get(key);
    if (!c) {
      c = {
        ok: this.metrics.invocations.labels({ actor, version, result: 'ok' }),
        seconds: this.metrics.invocationSeconds.labels({ actor, version }),
        traffic: this.metrics.traffic.entry(actor, version),
      };
      this.counters.set(key, c);
    }
    return c;
  }

  /** Stop everything (host shutdown). */
  async stopAll(reason: string): Promise<void> {
    for (const r of [...this.running.values()]) await this.stop({ actor: r.actor, version: r.version }, reason).catch(() => {});
  }

  /** How the workers of actor@version serve the lattice, and what this host does for them. */
  private serving(actor: string, version: string): LatticeServing {
    const { ok, seconds, traffic } = this.countersOf(actor, version);
    return {
      servers: this.connect.servers,
      connect: this.connect,
      connectionName: `trellis-host-${this.hostName}/${actor}@${version}`,
      subject: this.subjects.rpc(actor, version),
      queue: this.subjects.rpcQueue(actor, version),
      hostId: this.hostId,
      version,
      progress: (reply) => {
        if (!this.nc.isClosed()) this.nc.publish(reply, PROGRESS_REPLY.body, { headers: PROGRESS_REPLY.headers });
      },
      fail: (reply, error) => {
        if (!this.nc.isClosed()) this.nc.publish(reply, encode({ ok: false, error, host: this.hostId, version } satisfies InvokeReply));
      },
      record: (batch) => {
        if (batch.ok > 0) ok.inc(batch.ok);
        for (const [result, n] of Object.entries(batch.errors)) this.metrics.invocations.inc({ actor, version, result }, n);
        for (const s of batch.seconds) seconds.observe(s);
        // The canary window: 5xx responses and Trellis errors fail; calls the caller had given up
        // on before they ran, and overload refusals it retries elsewhere, were not served (the
        // caller counts or retries them). Timings include those (they are few and fast).
        let requests = batch.ok - batch.unserved;
        let failures = batch.serverErrors - batch.unserved;
        for (const [code, n] of Object.entries(batch.errors)) if (code !== 'TRELLIS_OVERLOADED') (requests += n), (failures += n);
        traffic.requests += requests;
        traffic.failures += failures;
        for (const s of batch.seconds) observe(traffic.histogram, s * 1000);
      },
    };
  }
}
