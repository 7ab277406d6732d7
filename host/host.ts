/**
 * The host process: joins a lattice over NATS with a stable nkey identity, advertises itself
 * (started event, a small liveness beat every second, its full inventory on every change and
 * every heartbeat period), and answers control commands.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { nkeys, type Msg, type NatsConnection, type Subscription } from 'nats';
import { classifyConnectError, connectParticipant } from '../lattice/control/index.ts';
import { TrellisError } from '../lattice/errors/index.ts';
import { createLogger, type Logger } from '../lattice/log/index.ts';
import { describeConnect } from '../lattice/options/index.ts';
import { startHostObservability, type HostObservability } from './observability.ts';
import { subjects as buildSubjects, type Subjects, type EventType } from '../lattice/subjects/index.ts';
import { CONTROL_WIRE_LIMITS, encodeBeat, encodeEvent, makeEvent, type EventData, type HostInventory } from '../lattice/wire/index.ts';
import { startOpsServer } from './http.ts';
import { ControlGate } from './control-gate.ts';
import { controlDispatcher } from './control.ts';
import { HostRegistration } from './registration.ts';
import { ActorSupervisor } from './actors.ts';
import { createCapabilities } from './capabilities.ts';
import { createComponentTrust } from './signing.ts';
import { ProviderSupervisor } from './providers.ts';
import { startGateway, type Gateway } from '../providers/index.ts';
import { createHostMetrics, type HostMetrics } from './metrics.ts';
import { createRuntime, type ActorRuntime } from './runtime/index.ts';
import { startController, type Controller } from '../lattice/reconciler/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { startMetricsReporter } from '../lattice/metrics/index.ts';
import { openOnce } from '../lattice/state/index.ts';
import { readSeedFile } from '../lattice/signing/index.ts';
import { packagePath } from '../lattice/package-root/index.ts';
import { compileHostOptions, validateLabel, type CompiledHostOptions, type HostOptions } from './options/index.ts';

/** The Trellis version this host runs, as advertised in inventory. */
export const TRELLIS_VERSION: string = JSON.parse(
  readFileSync(packagePath('package.json'), 'utf8'),
).version;

/** A running host. */
export interface Host extends AsyncDisposable {
  readonly id: string;
  readonly name: string;
  readonly lattice: string;
  /** The operations endpoint URL when an HTTP port was configured. */
  readonly opsUrl?: string;
  /** The in-process HTTP gateway, when the host runs one (`--gateway`). */
  readonly gateway?: Gateway;
  readonly logger: Logger;
  /** Current inventory (the same document heartbeats carry). */
  inventory(): HostInventory;
  /**
   * Graceful stop: answer nothing new, finish in-flight work within `drainMs` (default: the
   * host's stopTimeoutMs), publish host_stopped, drain NATS. Idempotent.
   */
  stop(reason?: string, drainMs?: number): Promise<void>;
  /** Resolves when the host has stopped, whoever asked (CLI signal, control command). */
  readonly stopped: Promise<void>;
  /** The lattice controller candidate this host runs (absent with `controller: false`). */
  readonly controller?: Controller;
  /** Why the NATS connection closed, when it closed with an error (e.g. TRELLIS_NATS_AUTH: credentials revoked). */
  readonly connectionError?: TrellisError;
}

type Emit = <K extends EventType>(kind: K, data: EventData[K]) => void;

/** Events that mean the inventory changed: each one sends the inventory again (debounced). */
const INVENTORY_EVENTS: ReadonlySet<EventType> = new Set(['actor_started', 'actor_stopped', 'provider_started', 'provider_stopped', 'provider_restarted', 'labels_changed']);
/** Changes within this window go out as one inventory. */
const INVENTORY_DEBOUNCE_MS = 25;

/** Start a host and join the lattice. Resolves once it is subscribed and has announced itself. */
export async function startHost(userOptions: HostOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Host> {
  const options = compileHostOptions(userOptions, env);
  // Checked once here, not first when a provider starts: a host must not run for hours with a
  // secrets key its providers cannot read.
  if (options.secretsKeyFile) (await readSeedFile(options.secretsKeyFile, ['curve'], '--secrets-key file')).clear();
  const keyPair = options.seed ? nkeys.fromSeed(new TextEncoder().encode(options.seed)) : nkeys.createServer();
  const id = keyPair.getPublicKey();
  const name = options.name ?? `${os.hostname()}-${id.slice(-6).toLowerCase()}`;
  const subjects = buildSubjects(options.lattice);
  const observe = await startHostObservability({ id, lattice: options.lattice, logLevel: options.logLevel, otlpEndpoint: options.otlpEndpoint, version: TRELLIS_VERSION }, env);
  const { logger, tracing } = observe;
  const metrics = createHostMetrics({ hostId: id, lattice: options.lattice });
  const startedAt = new Date();
  const userLabels = { ...options.userLabels };

  let nc: NatsConnection;
  try {
    nc = await connectParticipant(options.connect, `trellis-host-${name}`);
  } catch (err) {
    await observe.closeTracing();
    throw err;
  }
  observe.attach(nc, subjects, metrics);
  // What this host serves, per actor version, shipped every second for canary analysis.
  const traffic = startMetricsReporter(nc, subjects, id, { window: metrics.traffic });

  // Actor-to-actor calls and the in-process gateway go through one RPC client, created lazily:
  // it needs JetStream for routes, and a host without actors must not require it. It prefers
  // this host's own instances (local first) and uses the lattice otherwise.
  let actors: ActorSupervisor | undefined;
  const rpc = openOnce(() =>
    createRpcClient(nc, {
      lattice: options.lattice,
      caller: id,
      traffic: metrics.traffic,
      tracing,
      local: { hostId: id, has: (a, v) => actors?.has(a, v) ?? false, versions: (a) => actors?.versionsOf(a) ?? [], invoke: (a, v, r, d, id, tp) => actors!.invokeLocal(a, v, r, d, id, tp) },
    }),
  );
  const rpcClient = rpc.get;
  const trust = createComponentTrust({ nc, subjects, hostIssuers: options.allowedIssuers, requireSigned: options.requireSigned, logger, recheck: () => void actors?.recheck() });
  const caps = createCapabilities({ nc, subjects, rpc: rpcClient, signingRequired: () => trust.enforcing(), tracing });
  const runtime = await createRuntime({ cacheDir: `${options.cacheDir}/components`, logger, capabilities: caps.capabilities, workers: options.workers, spans: tracing && ((spans) => tracing.record(spans)),
    queueWait: (actor, version, seconds) => metrics.queueWaitSeconds.observe({ actor, version }, seconds),
  });
  let inventoryChanged = () => {};
  const emit: Emit = (kind, data) => {
    if (nc.isClosed()) return;
    nc.publish(subjects.event(kind), encodeEvent(makeEvent(kind, `/trellis/${options.lattice}/host/${id}`, data)));
    if (INVENTORY_EVENTS.has(kind)) inventoryChanged();
  };
  actors = new ActorSupervisor(id, name, options.connect, nc, subjects, runtime, options.cacheDir, logger, metrics, emit, trust);
  metrics.observePools(() => actors!.pools());
  const providers = new ProviderSupervisor(id, options.providerConnect, options.lattice, logger, emit, options.logLevel, options.secretsKeyFile ? ['--secrets-key', options.secretsKeyFile] : []);
  const host = new HostImpl(id, name, options, subjects, nc, logger, metrics, startedAt, userLabels, actors, providers, runtime, emit, observe, async () => {
    caps.close();
    trust.close();
    await traffic.close();
    await rpc.opened()?.then(
      (client) => client.close(),
      () => {}, // never opened: nothing to close
    );
  });
  inventoryChanged = () => host.inventoryChanged();
  try {
    if (options.gateway) {
      host.gateway = await startGateway({ nc, lattice: options.lattice, listen: options.gateway, rpc: await rpcClient(), logger: logger.child({ component: 'gateway' }), tracing: await observe.gatewayTracing() });
    }
    await host.start();
    // The controller runs as its own participant (own connection, later its own credentials);
    // it waits for JetStream in the background rather than holding up the host.
    if (options.controller) host.controller = await startController({ servers: options.servers, connect: options.controllerConnect, lattice: options.lattice, name, logger });
  } catch (err) {
    // Nothing may outlive a failed start: the NATS connection alone keeps the process running.
    await host.stop('start failed').catch(() => {});
    throw err;
  }
  return host;
}

/** Wait for `work` at most `ms`; true when it settled in time. */
async function withinMs(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

class HostImpl implements Host {
  readonly stopped: Promise<void>;
  opsUrl?: string;
  gateway?: Gateway;
  controller?: Controller;
  connectionError?: TrellisError;
  private resolveStopped!: () => void;
  private stopping?: Promise<void>;
  private heartbeatTimer?: NodeJS.Timeout;
  private beatTimer?: NodeJS.Timeout;
  private changeTimer?: NodeJS.Timeout;
  /** Inventory sequence: one more for every inventory sent after a change. */
  private seq = 0;
  private subs: Subscription[] = [];
  private closeOps?: () => Promise<void>;
  /** This host's entry in the host registry. */
  private readonly registration: HostRegistration;
  /** Control commands: admitted per caller, then run fairly (see control-gate.ts). */
  private readonly gate: ControlGate;
  /** Checks and dispatches one control message (see control.ts). */
  private readonly onControl: (msg: Msg) => void;

  constructor(
    readonly id: string,
    readonly name: string,
    private readonly options: CompiledHostOptions,
    private readonly subjects: Subjects,
    private readonly nc: NatsConnection,
    readonly logger: Logger,
    private readonly metrics: HostMetrics,
    private readonly startedAt: Date,
    private readonly userLabels: Record<string, string>,
    private readonly actors: ActorSupervisor,
    private readonly providers: ProviderSupervisor,
    private readonly runtime: ActorRuntime,
    private readonly emit: Emit,
    private readonly observe: HostObservability,
    private readonly closeRpc: () => Promise<void>,
  ) {
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    this.registration = new HostRegistration(nc, subjects, { id, name, heartbeatMs: options.heartbeatMs }, logger);
    this.gate = new ControlGate(id, options.lattice, options.controlRate, nc, metrics, logger);
    this.onControl = controlDispatcher({ lattice: options.lattice, limits: { ...CONTROL_WIRE_LIMITS, maxBytes: options.maxControlPayloadBytes }, gate: this.gate }, {
      hostPing: () => this.inventory(),
      hostInventory: () => this.inventory(),
      hostStop: ({ timeoutMs }) => {
        // Reply first, then stop: the caller learns the command was accepted.
        setImmediate(() => void this.stop('stop requested by control command', timeoutMs));
        return { id: this.id };
      },
      actorStart: (request) => this.actors.start(request),
      actorScale: (request) => this.actors.scale(request),
      actorStop: (request) => this.actors.stop(request),
      providerStart: (request) => this.providers.start(request),
      providerStop: (request) => this.providers.stop(request),
      labelPut: ({ key, value }) => {
        validateLabel(key, value);
        this.userLabels[key] = value;
        this.emit('labels_changed', { hostId: this.id, labels: this.labels() });
        return { labels: this.labels() };
      },
      labelDel: ({ key }) => {
        validateLabel(key, '');
        if (!(key in this.userLabels)) throw new TrellisError('TRELLIS_NOT_FOUND', `label "${key}" is not set on host ${this.id}`);
        delete this.userLabels[key];
        this.emit('labels_changed', { hostId: this.id, labels: this.labels() });
        return { labels: this.labels() };
      },
    });
  }

  get lattice(): string {
    return this.options.lattice;
  }

  labels(): Record<string, string> {
    return { ...this.userLabels, ...this.options.automaticLabels };
  }

  inventory(): HostInventory {
    return {
      id: this.id,
      name: this.name,
      lattice: this.options.lattice,
      labels: this.labels(),
      version: TRELLIS_VERSION,
      startedAt: this.startedAt.toISOString(),
      uptimeMs: Date.now() - this.startedAt.getTime(),
      actors: this.actors.inventory(),
      providers: this.providers.inventory(),
      seq: this.seq,
      beatMs: this.options.beatMs,
    };
  }

  /** What this host runs changed: send the inventory soon (changes close together go as one). */
  inventoryChanged(): void {
    if (this.changeTimer || this.stopping) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      this.seq += 1;
      this.emit('host_heartbeat', this.inventory());
      // The beat says so at once: a listener that missed the inventory asks for it.
      this.beat();
    }, INVENTORY_DEBOUNCE_MS);
  }

  /** The liveness beat: tiny, every beat period. */
  private beat(): void {
    if (this.nc.isClosed()) return;
    this.nc.publish(this.subjects.beat(this.id), encodeBeat({ id: this.id, periodMs: this.options.beatMs, seq: this.seq }));
  }

  async start(): Promise<void> {
    // Broadcast operations (ping) and operations addressed to this host alone.
    for (const subject of [this.subjects.controlForAll(), this.subjects.controlForHost(this.id)]) {
      this.subs.push(this.nc.subscribe(subject, { callback: (_err, msg) => this.onControl(msg) }));
    }
    await this.nc.flush();
    if (this.options.httpPort !== undefined) {
      const ops = await startOpsServer({
        host: this.options.httpHost,
        port: this.options.httpPort,
        registry: this.metrics.registry,
        isReady: () => !this.nc.isClosed() && this.stopping === undefined,
      });
      this.opsUrl = ops.url;
      this.closeOps = ops.close;
    }
    // Registered before it is announced: a client that lists the registry then knows to wait
    // for this host's ping answer. Bounded, since a lattice may run without JetStream.
    await withinMs(this.registration.register(), 3000);
    // The streams `trellis logs/events --since` read; bounded, since a lattice may run without JetStream.
    await withinMs(this.observe.ensureStreams(this.nc, this.subjects), 3000);
    this.emit('host_started', { hostId: this.id, name: this.name, labels: this.labels(), version: TRELLIS_VERSION });
    this.heartbeat();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.options.heartbeatMs);
    this.heartbeatTimer.unref();
    this.beat();
    this.beatTimer = setInterval(() => this.beat(), this.options.beatMs);
    this.beatTimer.unref();
    // A closed connection (server gone for good, or drained) ends the host.
    void this.nc.closed().then((err) => {
      if (err) this.logger.error({ err, code: (this.connectionError = classifyConnectError(err, this.options.servers)).code }, 'NATS connection closed with an error');
      this.resolveStopped();
    });
    // `nats`: what it connects with, never a secret (kinds, users, public keys, file names).
    this.logger.info({ name: this.name, labels: this.labels(), servers: this.options.servers, nats: describeConnect(this.options.connect), opsUrl: this.opsUrl, allowedIssuers: this.options.allowedIssuers }, 'host started');
  }

  private heartbeat(): void {
    this.metrics.heartbeats.inc();
    this.metrics.uptime.set((Date.now() - this.startedAt.getTime()) / 1000);
    this.emit('host_heartbeat', this.inventory());
    void this.registration.register();
  }

  stop(reason = 'stopped', drainMs = this.options.stopTimeoutMs): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info({ reason, drainMs }, 'host stopping');
      // The controller lets go of its lease first, so another host's takes over at once (bounded:
      // a stop must not wait on a term still starting).
      if (this.controller) await withinMs(this.controller.close().catch((err: unknown) => this.logger.warn({ err }, 'controller stop failed')), 2000);
      clearInterval(this.heartbeatTimer);
      clearInterval(this.beatTimer);
      clearTimeout(this.changeTimer);
      for (const sub of this.subs) sub.unsubscribe();
      const deadline = Date.now() + drainMs;
      await withinMs(this.registration.deregister(), 1000);
      // The gateway and actors stop taking calls (queue subscriptions drain) and finish the calls
      // they hold before the host says goodbye, within the stop's budget; past it, closing the
      // runtime below ends what still runs.
      const graceful = (async () => {
        await this.gateway?.close();
        await this.actors.stopAll(reason);
      })();
      if (!(await withinMs(graceful, Math.max(0, deadline - Date.now())))) this.logger.warn({ drainMs }, 'in-flight work outlived the stop budget; ending it');
      await this.providers.stopAll(reason);
      await this.closeRpc();
      await this.runtime.close();
      this.emit('host_stopped', { hostId: this.id, reason });
      await this.observe.closeTracing();
      // Lines from here on go to stdout only: the connection drains now.
      this.observe.detachLogs();
      try {
        // drain flushes the host_stopped event and lets in-flight replies go out before closing.
        await withinMs(this.nc.drain(), Math.max(250, deadline - Date.now()));
      } catch (err) {
        this.logger.warn({ err }, 'drain failed; closing');
      }
      if (!this.nc.isClosed()) await this.nc.close();
      await this.closeOps?.();
      this.logger.info('host stopped');
      this.resolveStopped();
    })();
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop('disposed');
  }
}
