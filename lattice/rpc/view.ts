/**
 * What a caller knows about where actors run: actor → version → hosts with instances. Fed by
 * inventories (host_heartbeat, sent on every change), actor started/stopped events and
 * host_stopped, and bootstrapped with one ping. Hosts stay live by their liveness beats: a host
 * that missed three beats (3 s at the default 1 s period) expires, so a host that died silently
 * stops attracting traffic even before NATS notices. A host that sends no beats (an older
 * version) expires after three of the longest heartbeat periods instead.
 */
import { RequestStrategy, type NatsConnection, type Subscription } from 'nats';
import type { Subjects } from '../subjects/index.ts';
import { compareVersions } from '../versions/index.ts';
import { deadAfterMs, decode, decodeBeat, decodeEvent, encode, type ControlReply, type HostInventory } from '../wire/index.ts';

/** Max heartbeat period (ms) a host may use; entries of a host without beats older than 3 of these expire. */
const EXPIRY_MS = 3 * 5000;
/**
 * An expired placement is kept this long (not live, but revived by the host's next beat), so a
 * caller that itself stalled or lost its connection for a few seconds does not forget every host
 * until their next inventories; past it, a host that died without a word is forgotten.
 */
const FORGET_AFTER_MS = 60_000;

interface Placement {
  instances: number;
  seenAt: number;
}

/** Live placement of actor versions in the lattice. */
export interface LatticeView {
  /** Versions of `actor` with at least one live instance, ascending; the same array until it changes. */
  liveVersions(actor: string): readonly string[];
  /** Versions of `actor` this view has seen running (live or not since), ascending. */
  knownVersions(actor: string): string[];
  /** Hosts running `actor@version`. */
  hostsOf(actor: string, version: string): string[];
  /** Wait for the bootstrap ping (once). */
  ready(): Promise<void>;
  close(): void;
}

/** Start tracking the lattice. */
export function watchLattice(nc: NatsConnection, subjects: Subjects): LatticeView {
  // actor → version → hostId → placement
  const placements = new Map<string, Map<string, Map<string, Placement>>>();
  // Callers ask on every invocation; the answer only changes with events or when an entry
  // expires, so it is computed once and kept (the same array) until then.
  const liveCache = new Map<string, { versions: string[]; validUntil: number }>();
  // hostId → when its last beat came and how long it may stay silent.
  const beats = new Map<string, { at: number; deadAfterMs: number }>();
  /** Until when the placement `p` of `hostId` counts as live. */
  const liveUntil = (hostId: string, p: Placement) => {
    const beat = beats.get(hostId);
    return beat ? beat.at + beat.deadAfterMs : p.seenAt + EXPIRY_MS;
  };

  const forget = (hostId: string) => {
    beats.delete(hostId);
    for (const versions of placements.values()) for (const hosts of versions.values()) hosts.delete(hostId);
    liveCache.clear();
  };
  const set = (actor: string, version: string, hostId: string, instances: number) => {
    liveCache.delete(actor);
    let versions = placements.get(actor);
    if (!versions) placements.set(actor, (versions = new Map()));
    let hosts = versions.get(version);
    if (!hosts) versions.set(version, (hosts = new Map()));
    if (instances > 0) hosts.set(hostId, { instances, seenAt: Date.now() });
    else hosts.delete(hostId);
  };
  const applyInventory = (inv: HostInventory) => {
    for (const versions of placements.values()) for (const hosts of versions.values()) hosts.delete(inv.id);
    liveCache.clear();
    if (inv.beatMs) beats.set(inv.id, { at: Date.now(), deadAfterMs: deadAfterMs(inv.beatMs) });
    for (const actor of inv.actors) set(actor.name, actor.version, inv.id, actor.instances);
  };

  const subs: Subscription[] = [
    nc.subscribe(subjects.allBeats(), {
      callback: (_err, msg) => {
        try {
          const beat = decodeBeat(msg.data);
          // Only hosts the view holds placements of; a beat alone says nothing about actors.
          const known = beats.get(beat.id);
          if (known) {
            const now = Date.now();
            // A host that had expired is live again: cached answers without it are stale.
            if (now > known.at + known.deadAfterMs) liveCache.clear();
            known.at = now;
            known.deadAfterMs = deadAfterMs(beat.periodMs);
          }
        } catch {
          // Not a beat.
        }
      },
    }),
    nc.subscribe(subjects.allEvents(), {
      callback: (_err, msg) => {
        try {
          const event = decodeEvent(msg.data);
          switch (event.kind) {
            case 'host_heartbeat':
              applyInventory(event.data);
              break;
            case 'actor_started':
              set(event.data.actor, event.data.version, event.data.hostId, event.data.instances);
              break;
            case 'actor_stopped':
              set(event.data.actor, event.data.version, event.data.hostId, 0);
              break;
            case 'host_stopped':
              forget(event.data.hostId);
              break;
          }
        } catch {
          // Not our event or malformed: the view only trusts what it can decode.
        }
      },
    }),
  ];

  /** Ask every host for its inventory (at start, and after this connection came back). */
  const pingAll = async () => {
    try {
      const replies = await nc.requestMany(subjects.control('hostPing'), encode({ lattice: subjects.lattice }), {
        strategy: RequestStrategy.JitterTimer,
        maxWait: 1000,
        jitter: 150,
      });
      for await (const msg of replies) {
        if (msg.data.length === 0) continue;
        const reply = decode<ControlReply<HostInventory>>(msg.data);
        if (reply.ok && reply.data) applyInventory(reply.data);
      }
    } catch {
      // No hosts answered: the view starts empty and fills from events.
    }
  };
  const bootstrap = pingAll();
  // Events sent while this connection was down are lost: after a reconnect, ask again.
  void (async () => {
    for await (const status of nc.status()) if (status.type === 'reconnect') void pingAll();
  })();

  return {
    liveVersions(actor) {
      const now = Date.now();
      const cached = liveCache.get(actor);
      if (cached && now < cached.validUntil) return cached.versions;
      const live: string[] = [];
      let validUntil = Infinity;
      for (const [version, hosts] of placements.get(actor) ?? []) {
        let liveHosts = 0;
        for (const [id, p] of hosts) {
          const until = liveUntil(id, p);
          if (now <= until) {
            liveHosts += 1;
            validUntil = Math.min(validUntil, until);
          } else if (now > until + FORGET_AFTER_MS) hosts.delete(id);
        }
        if (liveHosts > 0) live.push(version);
      }
      const versions = live.sort(compareVersions);
      liveCache.set(actor, { versions, validUntil });
      return versions;
    },
    knownVersions(actor) {
      return [...(placements.get(actor)?.keys() ?? [])].sort(compareVersions);
    },
    hostsOf(actor, version) {
      const now = Date.now();
      return [...(placements.get(actor)?.get(version) ?? [])].filter(([id, p]) => now <= liveUntil(id, p)).map(([id]) => id);
    },
    ready: () => bootstrap,
    close() {
      for (const sub of subs) sub.unsubscribe();
    },
  };
}
