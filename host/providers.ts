/**
 * Providers supervised by a host: each runs as a child process (`trellis provider <kind>`) so a
 * crashing provider cannot take the host down; the host restarts it with exponential backoff,
 * announces restarts as events, and reports health in its inventory.
 *
 * A provider kind is held by references: the apps that asked for it (`owner`) and `manual`
 * (started by hand). An app's stop drops its reference; a hand stop drops the manual one. The
 * process stops only when no reference is left, so deleting one app never takes a provider
 * away from another app, and a hand stop of a provider that apps still need leaves it running
 * (the reply says for whom): stopping it would only make their reconciler start it again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TrellisError } from '../lattice/errors/index.ts';
import { childConnectEnv, type NatsConnect } from '../lattice/options/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import { providerKind, type ProviderKind } from '../lattice/links/index.ts';
import type { EventData, ProviderInventory } from '../lattice/wire/index.ts';
import { packagePath } from '../lattice/package-root/index.ts';

// Through the bin, which runs dist/ when it is current and the sources otherwise.
const CLI = packagePath('host', 'cli', 'trellis.js');
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;

interface Supervised {
  kind: ProviderKind;
  child?: ChildProcess;
  health: ProviderInventory['health'];
  restarts: number;
  startedAt: string;
  stopping: boolean;
  backoffMs: number;
  timer?: NodeJS.Timeout;
  /** Apps holding a reference. */
  owners: Set<string>;
  /** Started by hand: a reference of its own, dropped by a stop without an owner. */
  manual: boolean;
}

type Emit = <K extends keyof EventData>(kind: K, data: EventData[K]) => void;

/** Start, stop and restart provider child processes of one host. */
export class ProviderSupervisor {
  private readonly providers = new Map<ProviderKind, Supervised>();

  constructor(
    private readonly hostId: string,
    /** How the providers connect (role provider): passed to them in their environment, never in argv. */
    private readonly connect: NatsConnect,
    private readonly lattice: string,
    private readonly logger: Logger,
    private readonly emit: Emit,
    private readonly logLevel: string,
    /** More arguments of every provider process (the secrets key file: a path, never the seed). */
    private readonly extraArgs: readonly string[] = [],
  ) {}

  inventory(): ProviderInventory[] {
    return [...this.providers.values()].map((p) => ({
      name: p.kind,
      health: p.health,
      restarts: p.restarts,
      startedAt: p.startedAt,
      pid: p.child?.pid,
      owners: [...p.owners].sort(),
      manual: p.manual,
    }));
  }

  /**
   * Start a provider kind, or take one more reference on it (idempotent per owner); resolves
   * when it serves. `owner`: the app asking; without one, a hand start.
   */
  async start(body: { provider: string; owner?: string }): Promise<ProviderInventory> {
    const kind = providerKind(String(body.provider ?? ''));
    let p = this.providers.get(kind);
    const isNew = !p;
    if (!p) {
      p = { kind, health: 'starting', restarts: 0, startedAt: new Date().toISOString(), stopping: false, backoffMs: BACKOFF_MIN_MS, owners: new Set(), manual: false };
      this.providers.set(kind, p);
    }
    if (body.owner === undefined) p.manual = true;
    else p.owners.add(body.owner);
    if (isNew) {
      try {
        await this.launch(p);
      } catch (err) {
        // It never served: forget it, so the next start launches it again instead of reporting
        // a provider that is not there.
        if (this.providers.get(kind) === p) this.providers.delete(kind);
        p.stopping = true;
        clearTimeout(p.timer);
        throw err;
      }
    }
    return this.inventory().find((i) => i.name === kind)!;
  }

  private launch(p: Supervised): Promise<void> {
    // The IPC channel carries the provider's ready message, and its end tells the provider that
    // this host is gone (providers/service.ts followSupervisor), even when nothing else could.
    const child = spawn(process.execPath, [CLI, 'provider', p.kind, '--lattice', this.lattice, '--log-level', this.logLevel, ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      env: childConnectEnv(this.connect),
    });
    p.child = child;
    p.health = 'starting';
    // Provider logs are JSON lines at the host's level: passed through whole, one line at a time.
    createInterface({ input: child.stdout! }).on('line', (line) => process.stdout.write(`${line}\n`));
    const ready = new Promise<void>((resolve, reject) => {
      child.on('message', (message) => {
        if ((message as { type?: unknown } | null)?.type !== 'ready') return;
        p.health = 'ok';
        p.backoffMs = BACKOFF_MIN_MS;
        resolve();
      });
      child.once('exit', (code, signal) => {
        reject(new TrellisError('TRELLIS_INTERNAL', `provider ${p.kind} exited (${signal ?? code}) before it was ready`));
        if (p.stopping) return;
        p.health = 'failed';
        p.restarts += 1;
        const reason = `exited with ${signal ?? `code ${code}`}`;
        this.logger.warn({ provider: p.kind, reason, restartInMs: p.backoffMs }, 'provider crashed; restarting');
        p.timer = setTimeout(() => {
          this.emit('provider_restarted', { hostId: this.hostId, provider: p.kind, restarts: p.restarts, reason });
          void this.launch(p).catch(() => {});
        }, p.backoffMs);
        p.backoffMs = Math.min(p.backoffMs * 2, BACKOFF_MAX_MS);
      });
    });
    return ready.then(() => this.emit('provider_started', { hostId: this.hostId, provider: p.kind }));
  }

  /**
   * Drop a reference on a provider kind: the app's (`owner`), or the manual one (a hand stop).
   * The process stops when no reference is left; otherwise the reply says who still holds it.
   */
  async stop(body: { provider: string; owner?: string }, reason = 'stop requested'): Promise<{ stopped: string; running?: boolean; owners?: string[] }> {
    const kind = providerKind(String(body.provider ?? ''));
    const p = this.providers.get(kind);
    if (!p) throw new TrellisError('TRELLIS_NOT_FOUND', `provider ${kind} does not run on host ${this.hostId}`);
    if (body.owner === undefined) p.manual = false;
    else p.owners.delete(body.owner);
    if (p.manual || p.owners.size > 0) {
      this.logger.info({ provider: kind, owners: [...p.owners], manual: p.manual }, 'provider reference dropped; still held');
      return { stopped: kind, running: true, owners: [...p.owners].sort() };
    }
    return this.terminate(p, reason);
  }

  /** End a provider's process whatever holds it (host shutdown, or its last reference gone). */
  private async terminate(p: Supervised, reason: string): Promise<{ stopped: string; running: false }> {
    const kind = p.kind;
    p.stopping = true;
    clearTimeout(p.timer);
    this.providers.delete(kind);
    const child = p.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(force);
    }
    this.emit('provider_stopped', { hostId: this.hostId, provider: kind, reason });
    return { stopped: kind, running: false };
  }

  /** Stop every provider at once (host shutdown): each gets its own grace, not the sum of them. */
  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => this.terminate(p, reason).catch(() => {})));
  }
}
