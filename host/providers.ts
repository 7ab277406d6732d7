/**
 * Providers supervised by a host: each runs as a child process (`trellis provider <kind>`) so a
 * crashing provider cannot take the host down; the host restarts it with exponential backoff,
 * announces restarts as events, and reports health in its inventory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TrellisError } from '../lattice/errors/index.ts';
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
}

type Emit = <K extends keyof EventData>(kind: K, data: EventData[K]) => void;

/** Start, stop and restart provider child processes of one host. */
export class ProviderSupervisor {
  private readonly providers = new Map<ProviderKind, Supervised>();

  constructor(
    private readonly hostId: string,
    private readonly servers: string[],
    private readonly lattice: string,
    private readonly logger: Logger,
    private readonly emit: Emit,
    private readonly logLevel: string,
  ) {}

  inventory(): ProviderInventory[] {
    return [...this.providers.values()].map((p) => ({ name: p.kind, health: p.health, restarts: p.restarts, startedAt: p.startedAt, pid: p.child?.pid }));
  }

  /** Start a provider kind (idempotent); resolves when it serves. */
  async start(body: Record<string, unknown>): Promise<ProviderInventory> {
    const kind = providerKind(String(body.provider ?? ''));
    let p = this.providers.get(kind);
    if (!p) {
      p = { kind, health: 'starting', restarts: 0, startedAt: new Date().toISOString(), stopping: false, backoffMs: BACKOFF_MIN_MS };
      this.providers.set(kind, p);
      await this.launch(p);
    }
    return this.inventory().find((i) => i.name === kind)!;
  }

  private launch(p: Supervised): Promise<void> {
    // The IPC channel carries the provider's ready message, and its end tells the provider that
    // this host is gone (providers/service.ts followSupervisor), even when nothing else could.
    const child = spawn(process.execPath, [CLI, 'provider', p.kind, '--nats', this.servers.join(','), '--lattice', this.lattice, '--log-level', this.logLevel], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
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

  /** Stop a provider kind. */
  async stop(body: Record<string, unknown>, reason = 'stop requested'): Promise<{ stopped: string }> {
    const kind = providerKind(String(body.provider ?? ''));
    const p = this.providers.get(kind);
    if (!p) throw new TrellisError('TRELLIS_NOT_FOUND', `provider ${kind} does not run on host ${this.hostId}`);
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
    return { stopped: kind };
  }

  async stopAll(reason: string): Promise<void> {
    for (const kind of [...this.providers.keys()]) await this.stop({ provider: kind }, reason).catch(() => {});
  }
}
