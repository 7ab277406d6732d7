/**
 * The leader's view of the live hosts: who beats (liveness), what each runs (its last
 * inventory, patched with the replies of the leader's own commands), and who is held out after
 * flapping. Built from one ping, then kept by beats and inventories (host_heartbeat); a host
 * whose beat says it changed since the inventory held here is asked for its inventory.
 *
 * A host is dead after 3 missed beats. Sooner when NATS says so: once a beat is half a period
 * late, the host is asked for its inventory, and "no responders" means its connection is gone
 * (a killed process's socket closes at once); a host that is only slow or cut off answers
 * late or not at all, and is then counted dead by its missed beats alone.
 *
 * Hysteresis: a host counted dead (missed beats) that comes back is held out (no new
 * placements) for a hold-down period, so a flapping host does not pull instances to and fro.
 * A host that stopped gracefully (host_stopped) and starts again is not flapping.
 */
import type { NatsConnection, Subscription } from 'nats';
import type { ControlClient } from '../control/index.ts';
import type { Subjects } from '../subjects/index.ts';
import { DEFAULT_BEAT_MS, deadAfterMs, decodeBeat, decodeEvent, type ActorInventory, type HostInventory, type ProviderInventory } from '../wire/index.ts';

/** How long a host that flapped is held out, unless configured. */
export const DEFAULT_HOLD_DOWN_MS = 30_000;

/** Why the view changed, for the loop and its events. */
export type HostChange = { kind: 'joined' | 'changed'; hostId: string } | { kind: 'died' | 'left'; hostId: string; inventory: HostInventory; why: string };

interface Tracked {
  inventory: HostInventory;
  lastBeatAt: number;
  deadAfterMs: number;
  /** Inventory sequence the host's last beat announced. */
  beatSeq: number;
  asking: boolean;
  /** When the host was last probed for being late. */
  probedAt: number;
}

/** The live hosts of a lattice, as the leader sees them. */
export interface HostView {
  /** Live hosts with their current inventories. */
  live(): HostInventory[];
  /** Ids of live hosts held out after flapping. */
  heldOut(): string[];
  /** Apply a command's reply to what the view holds for a host (until its next inventory). */
  patchActor(hostId: string, actor: ActorInventory | { name: string; version: string; stopped: true }): void;
  patchProvider(hostId: string, provider: ProviderInventory | { name: string; stopped: true }): void;
  close(): void;
}

/** Start tracking hosts. Resolves once the bootstrap ping has been answered (or timed out). */
export async function watchHosts(
  nc: NatsConnection,
  subjects: Subjects,
  control: ControlClient,
  options: { holdDownMs: number; onChange: (change: HostChange) => void; now?: () => number },
): Promise<HostView> {
  const now = options.now ?? Date.now;
  const hosts = new Map<string, Tracked>();
  /** hostId → when it was last counted dead (for flap detection). */
  const diedAt = new Map<string, number>();
  /** hostId → until when it is held out. */
  const heldUntil = new Map<string, number>();

  const accept = (inv: HostInventory) => {
    const known = hosts.get(inv.id);
    // An inventory older than one already applied (replies and events cross) is ignored, within
    // one run of the host: a host restarted with the same id (a kept seed) counts from 0 again,
    // and its new start time says it is another process, whose inventory replaces the old one.
    const sameRun = known !== undefined && known.inventory.startedAt === inv.startedAt;
    if (known && sameRun && inv.seq !== undefined && known.inventory.seq !== undefined && inv.seq < known.inventory.seq) return;
    const period = inv.beatMs ?? DEFAULT_BEAT_MS;
    if (!known) {
      const died = diedAt.get(inv.id);
      if (died !== undefined && now() - died < options.holdDownMs) heldUntil.set(inv.id, now() + options.holdDownMs);
      diedAt.delete(inv.id);
      hosts.set(inv.id, { inventory: inv, lastBeatAt: now(), deadAfterMs: deadAfterMs(period), beatSeq: inv.seq ?? 0, asking: false, probedAt: 0 });
      options.onChange({ kind: 'joined', hostId: inv.id });
      return;
    }
    known.inventory = inv;
    known.lastBeatAt = now();
    options.onChange({ kind: 'changed', hostId: inv.id });
  };

  const died = (id: string, t: Tracked, why: string) => {
    if (hosts.get(id) !== t) return;
    hosts.delete(id);
    diedAt.set(id, now());
    options.onChange({ kind: 'died', hostId: id, inventory: t.inventory, why });
  };

  const ask = (hostId: string, timeoutMs = 2000) => {
    const t = hosts.get(hostId);
    if (t?.asking) return;
    if (t) t.asking = true;
    void control
      .getInventory(hostId, { timeoutMs })
      .then(accept, (err: { code?: string }) => {
        // Nobody holds the host's subscriptions any more: its connection is gone.
        if (t && err.code === 'TRELLIS_NO_RESPONDERS') died(hostId, t, 'its connection is gone (no responders)');
      })
      .finally(() => {
        const again = hosts.get(hostId);
        if (again) again.asking = false;
      });
  };

  const subs: Subscription[] = [
    nc.subscribe(subjects.allBeats(), {
      callback: (_err, msg) => {
        let beat;
        try {
          beat = decodeBeat(msg.data);
        } catch {
          return;
        }
        const t = hosts.get(beat.id);
        if (!t) return ask(beat.id);
        t.lastBeatAt = now();
        t.deadAfterMs = deadAfterMs(beat.periodMs);
        t.beatSeq = beat.seq;
        // The host changed since the inventory held here, and that inventory was lost: ask. A
        // sequence behind the inventory's means the host restarted (with the same id): ask too.
        if (t.inventory.seq !== undefined && beat.seq !== t.inventory.seq) ask(beat.id);
      },
    }),
    nc.subscribe(subjects.allEvents(), {
      callback: (_err, msg) => {
        try {
          const event = decodeEvent(msg.data);
          if (event.kind === 'host_heartbeat') accept(event.data);
          else if (event.kind === 'host_stopped') {
            const t = hosts.get(event.data.hostId);
            if (!t) return;
            hosts.delete(event.data.hostId);
            options.onChange({ kind: 'left', hostId: event.data.hostId, inventory: t.inventory, why: event.data.reason });
          }
        } catch {
          // Not an event of ours.
        }
      },
    }),
  ];

  // Deaths are noticed on a short clock of their own, not only when something else happens.
  const sweep = setInterval(() => {
    const t0 = now();
    for (const [id, t] of hosts) {
      const late = t0 - t.lastBeatAt;
      if (late > t.deadAfterMs) died(id, t, `no beat for ${late} ms`);
      else if (late > (t.deadAfterMs / 3) * 1.5 && t0 - t.probedAt > t.deadAfterMs / 3) {
        t.probedAt = t0;
        ask(id, t.deadAfterMs / 3);
      }
    }
    for (const [id, until] of heldUntil) if (t0 >= until) heldUntil.delete(id);
  }, 100);
  sweep.unref();

  for (const inv of await control.pingHosts({ waitMs: 1000 }).catch(() => [])) accept(inv);

  const patch = (hostId: string, change: (inv: HostInventory) => HostInventory) => {
    const t = hosts.get(hostId);
    if (t) t.inventory = change(t.inventory);
  };
  return {
    live: () => [...hosts.values()].map((t) => t.inventory),
    heldOut: () => [...heldUntil.keys()].filter((id) => hosts.has(id)),
    patchActor(hostId, actor) {
      patch(hostId, (inv) => {
        const others = inv.actors.filter((a) => !(a.name === actor.name && a.version === actor.version));
        return { ...inv, actors: 'stopped' in actor ? others : [...others, actor] };
      });
    },
    patchProvider(hostId, provider) {
      patch(hostId, (inv) => {
        const others = inv.providers.filter((p) => p.name !== provider.name);
        return { ...inv, providers: 'stopped' in provider ? others : [...others, provider] };
      });
    },
    close() {
      clearInterval(sweep);
      for (const sub of subs) sub.unsubscribe();
    },
  };
}
