/**
 * What the dashboard knows about a lattice, the pure part: hosts (inventories and liveness from
 * beats), weights, canaries, apps and recent events, folded from what NATS delivers, and the one
 * JSON view the page renders. No NATS, no timers: the server feeds it and asks for the view.
 */
import { statusView } from '../canary/state.ts';
import { effectiveStatus } from '../apps/status.ts';
import type { ActorWeights } from '../weights/index.ts';
import { DEFAULT_BEAT_MS, deadAfterMs, isRecord, type AppRevision, type AppStatus, type CanaryState, type CanaryStatusView, type HostBeat, type HostInventory } from '../wire/index.ts';
import { eventRow, type EventRow } from './events.ts';
import type { Traffic } from './traffic.ts';

/** Events kept for the page. */
export const EVENTS_KEPT = 100;
/** A dead or stopped host stays on the page, greyed, this long. */
export const GONE_KEPT_MS = 60_000;

/** `ok`: beating; `late`: a beat is over half a period late; `dead`: 3 beats missed; `stopped`: said goodbye. */
export type Health = 'ok' | 'late' | 'dead' | 'stopped';

/** One host card. */
export interface HostCard {
  id: string;
  name: string;
  labels: Record<string, string>;
  version: string;
  startedAt: string;
  health: Health;
  /** Why it is not ok (a stop reason, how long without a beat). */
  reason?: string;
  lastBeatMsAgo: number;
  actors: { name: string; version: string; instances: number; maxConcurrency: number; app?: string }[];
  providers: { name: string; health: string; restarts: number }[];
  /** Instances of all actors on the host. */
  instances: number;
}

/** One app, desired against running. */
export interface AppCard {
  name: string;
  revision: number;
  phase: string;
  reasons: string[];
  actors: { name: string; version: string; desired: number; running: number }[];
}

/** Everything the page shows except the traffic series (those come once a second). */
export interface DashboardView {
  lattice: string;
  at: number;
  /** The dashboard's own NATS connection: while down, what the page shows is frozen, not dying. */
  nats: { connected: boolean; since?: string };
  hosts: HostCard[];
  weights: ActorWeights[];
  canaries: CanaryStatusView[];
  apps: AppCard[];
  events: EventRow[];
}

interface TrackedHost {
  inventory: HostInventory;
  lastBeatAt: number;
  periodMs: number;
  beatSeq: number;
  stoppedAt?: number;
  stopReason?: string;
  /** When it was first seen dead (it is dropped GONE_KEPT_MS after). */
  deadAt?: number;
}

/** The dashboard's state of one lattice. */
export class DashboardModel {
  readonly lattice: string;
  readonly #hosts = new Map<string, TrackedHost>();
  readonly #weights = new Map<string, ActorWeights>();
  readonly #canaries = new Map<string, CanaryState>();
  readonly #revisions = new Map<string, AppRevision>();
  readonly #statuses = new Map<string, AppStatus>();
  #events: EventRow[] = [];
  #connected = true;
  /** Since when the dashboard's NATS connection has been down (its own view of the lattice is frozen). */
  #disconnectedAt: number | undefined;

  constructor(lattice: string) {
    this.lattice = lattice;
  }

  /**
   * A host's inventory (heartbeat, ping or inventory reply). Ignored when older than the one
   * held for the same run of the host (replies and events cross).
   */
  inventory(inv: HostInventory, now: number): void {
    // Heartbeats are not validated on the way in: one malformed (foreign) inventory must not break the view.
    if (!isInventory(inv)) return;
    const known = this.#hosts.get(inv.id);
    const sameRun = known !== undefined && known.inventory.startedAt === inv.startedAt;
    if (known && sameRun && inv.seq !== undefined && known.inventory.seq !== undefined && inv.seq < known.inventory.seq) return;
    // A host that stopped does not come back from a late heartbeat of the same run.
    if (known?.stoppedAt !== undefined && sameRun) return;
    this.#hosts.set(inv.id, { inventory: inv, lastBeatAt: now, periodMs: inv.beatMs ?? DEFAULT_BEAT_MS, beatSeq: inv.seq ?? known?.beatSeq ?? 0 });
  }

  /** A liveness beat. Returns true when the host's inventory should be asked for (unknown host, or it changed since). */
  beat(beat: HostBeat, now: number): boolean {
    const t = this.#hosts.get(beat.id);
    if (!t || t.stoppedAt !== undefined) return true;
    t.lastBeatAt = now;
    t.periodMs = beat.periodMs;
    t.beatSeq = beat.seq;
    t.deadAt = undefined;
    return t.inventory.seq !== undefined && beat.seq !== t.inventory.seq;
  }

  /** A host said goodbye (host_stopped). */
  hostStopped(hostId: string, reason: string, now: number): void {
    const t = this.#hosts.get(hostId);
    if (t) Object.assign(t, { stoppedAt: now, stopReason: reason });
  }

  /** A host's labels changed (labels_changed): shown at once, before its next inventory. */
  labels(hostId: string, labels: Record<string, string>): void {
    const t = this.#hosts.get(hostId);
    if (t) t.inventory = { ...t.inventory, labels };
  }

  /** The name of a host, for event summaries (its id when unknown). */
  hostName(hostId: string): string {
    return this.#hosts.get(hostId)?.inventory.name ?? hostId;
  }

  /** An actor's weights document (undefined: deleted). */
  weights(actor: string, doc: ActorWeights | undefined): void {
    if (doc) this.#weights.set(actor, doc);
    else this.#weights.delete(actor);
  }

  /** An actor's canary state document (undefined: deleted). */
  canary(actor: string, state: CanaryState | undefined): void {
    if (state) this.#canaries.set(actor, state);
    else this.#canaries.delete(actor);
  }

  /** An app's current revision (undefined: deleted). */
  revision(app: string, rev: AppRevision | undefined): void {
    if (rev) this.#revisions.set(app, rev);
    else this.#revisions.delete(app);
  }

  /** The status the controller last wrote for an app (undefined: deleted). */
  status(app: string, status: AppStatus | undefined): void {
    if (status) this.#statuses.set(app, status);
    else this.#statuses.delete(app);
  }

  /** A lattice event (CloudEvents JSON, already parsed); newest first on the page. */
  event(value: unknown): EventRow | undefined {
    if (!isRecord(value)) return undefined;
    const row = eventRow(value, (id) => this.hostName(id));
    // The same event heard twice (a second subscription path, a replay) is one row.
    if (!row || this.#events.some((e) => e.id === row.id)) return undefined;
    this.#events = [row, ...this.#events].slice(0, EVENTS_KEPT);
    return row;
  }

  /** Note hosts that died, and drop those gone (dead or stopped) for longer than GONE_KEPT_MS. */
  sweep(now: number): void {
    if (!this.#connected) return;
    for (const [id, t] of this.#hosts) {
      const dead = now - t.lastBeatAt > deadAfterMs(t.periodMs);
      if (dead && t.deadAt === undefined) t.deadAt = now;
      const goneAt = t.stoppedAt ?? t.deadAt;
      if (goneAt !== undefined && now - goneAt > GONE_KEPT_MS) this.#hosts.delete(id);
    }
  }

  /** The dashboard's own NATS connection went down or came back. */
  connection(up: boolean, now: number): void {
    this.#connected = up;
    this.#disconnectedAt = up ? undefined : (this.#disconnectedAt ?? now);
    // Beats missed while the dashboard could not hear them say nothing about the hosts.
    if (up) for (const t of this.#hosts.values()) if (t.stoppedAt === undefined) (t.lastBeatAt = now), (t.deadAt = undefined);
  }

  /** Whether any canary is shown (its live window changes every second). */
  hasCanaries(): boolean {
    return this.#canaries.size > 0;
  }

  /** The health of every host now, as a string: the server sends a new view when it changes. */
  healthKey(now: number): string {
    const judged = this.#disconnectedAt ?? now;
    return [...this.#hosts.values()].map((t) => `${t.inventory.id}:${health(t, judged).health}`).join(',');
  }

  /** The view the page renders; `traffic` supplies each canary's live window. */
  view(now: number, traffic?: Traffic): DashboardView {
    // While the dashboard hears nothing, hosts are judged as of the moment it went deaf.
    const judged = this.#disconnectedAt ?? now;
    const hosts = [...this.#hosts.values()].map((t) => card(t, judged));
    hosts.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    const apps: AppCard[] = [...this.#revisions.values()].map((rev) => {
      const s = effectiveStatus(rev, this.#statuses.get(rev.name));
      return { name: rev.name, revision: rev.revision, phase: s.phase, reasons: s.reasons, actors: s.actors.map((a) => ({ name: a.name, version: a.version, desired: a.desired, running: a.running })) };
    });
    apps.sort((a, b) => a.name.localeCompare(b.name));
    const canaries = [...this.#canaries.values()].map((c) => {
      const v = statusView(c, traffic?.analysisWindow(c.actor, c.stable, c.canary, now));
      // The page shows the latest decisions; the whole history stays in KV.
      return { ...v, history: v.history.slice(-8) };
    });
    canaries.sort((a, b) => a.actor.localeCompare(b.actor));
    return {
      lattice: this.lattice,
      at: now,
      nats: this.#connected ? { connected: true } : { connected: false, since: new Date(this.#disconnectedAt!).toISOString() },
      hosts,
      weights: [...this.#weights.values()].sort((a, b) => a.actor.localeCompare(b.actor)),
      canaries,
      apps,
      events: this.#events,
    };
  }
}

/** The fields of an inventory the view reads, checked. */
function isInventory(inv: unknown): inv is HostInventory {
  if (!isRecord(inv) || typeof inv.id !== 'string' || typeof inv.name !== 'string' || typeof inv.startedAt !== 'string' || !isRecord(inv.labels)) return false;
  if (!Array.isArray(inv.actors) || !inv.actors.every((a) => isRecord(a) && typeof a.name === 'string' && typeof a.version === 'string' && Number.isSafeInteger(a.instances))) return false;
  return Array.isArray(inv.providers) && inv.providers.every((p) => isRecord(p) && typeof p.name === 'string');
}

function health(t: TrackedHost, now: number): { health: Health; reason?: string } {
  if (t.stoppedAt !== undefined) return { health: 'stopped', reason: t.stopReason };
  const late = now - t.lastBeatAt;
  if (late > deadAfterMs(t.periodMs)) return { health: 'dead', reason: `no beat for ${Math.round(late / 1000)} s` };
  if (late > t.periodMs * 1.5) return { health: 'late', reason: `last beat ${Math.round(late / 100) / 10} s ago` };
  return { health: 'ok' };
}

function card(t: TrackedHost, now: number): HostCard {
  const inv = t.inventory;
  const actors = inv.actors
    .map((a) => ({ name: a.name, version: a.version, instances: a.instances, maxConcurrency: a.maxConcurrency, ...(a.owner ? { app: a.owner.app } : {}) }))
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version, undefined, { numeric: true }));
  return {
    id: inv.id,
    name: inv.name,
    labels: inv.labels,
    version: inv.version,
    startedAt: inv.startedAt,
    ...health(t, now),
    lastBeatMsAgo: Math.max(0, now - t.lastBeatAt),
    actors,
    providers: inv.providers.map((p) => ({ name: p.name, health: p.health, restarts: p.restarts })),
    instances: actors.reduce((n, a) => n + a.instances, 0),
  };
}
