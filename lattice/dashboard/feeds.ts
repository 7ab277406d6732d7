/**
 * The dashboard's NATS side: everything it shows comes from what the lattice already publishes —
 * beats and heartbeats (hosts), the per-version metrics windows (traffic), the event subjects, and
 * KV watches on the weights, apps, app-status and canary buckets. It only reads: buckets are bound,
 * never created, and one that does not exist yet is looked for again every few seconds.
 */
import type { NatsConnection, Subscription } from 'nats';
import { appRevisionKind, appStatusKind } from '../apps/documents.ts';
import { checkCanaryState } from '../canary/state.ts';
import { createControlClient } from '../control/index.ts';
import { fromWire } from '../metrics/index.ts';
import { followKv, openKv } from '../state/index.ts';
import type { Subjects } from '../subjects/index.ts';
import { weightsKind } from '../weights/index.ts';
import { decode, decodeBeat, decodeJson, isRecord, type HostInventory } from '../wire/index.ts';
import type { DashboardModel } from './model.ts';
import type { Traffic } from './traffic.ts';

/** How often a bucket that is not there yet is looked for. */
export const BUCKET_RETRY_MS = 2000;

/** The dashboard's subscriptions and watches; close() ends them all. */
export interface Feeds {
  close(): void;
}

/** Follow the lattice into `model` and `traffic`; `changed` is called after every change of the model. */
export async function feedDashboard(
  nc: NatsConnection,
  subjects: Subjects,
  model: DashboardModel,
  traffic: Traffic,
  options: { changed: () => void },
): Promise<Feeds> {
  const { changed } = options;
  const control = createControlClient(nc, { lattice: subjects.lattice });
  let closed = false;
  const stops: (() => void)[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const asking = new Set<string>();
  const accept = (inv: HostInventory) => {
    model.inventory(inv, Date.now());
    changed();
  };
  const ask = (hostId: string) => {
    if (asking.has(hostId) || closed) return;
    asking.add(hostId);
    void control
      .getInventory(hostId, { timeoutMs: 2000 })
      .then(accept, () => undefined)
      .finally(() => asking.delete(hostId));
  };

  const subs: Subscription[] = [
    nc.subscribe(subjects.allBeats(), {
      callback: (_err, msg) => {
        try {
          const beat = decodeBeat(msg.data);
          if (model.beat(beat, Date.now())) ask(beat.id);
        } catch {
          // Not a beat of ours.
        }
      },
    }),
    nc.subscribe(subjects.allEvents(), {
      callback: (_err, msg) => {
        let event: unknown;
        try {
          event = decodeJson(msg.data, 'event');
        } catch {
          return;
        }
        if (!isRecord(event) || !isRecord(event.data)) return;
        const data = event.data;
        const kind = typeof event.kind === 'string' ? event.kind : '';
        if (kind === 'host_heartbeat') return accept(data as unknown as HostInventory);
        if (kind === 'host_stopped' && typeof data.hostId === 'string') model.hostStopped(data.hostId, String(data.reason ?? ''), Date.now());
        if (kind === 'host_started' && typeof data.hostId === 'string') ask(data.hostId);
        if (kind === 'labels_changed' && typeof data.hostId === 'string' && isRecord(data.labels)) model.labels(data.hostId, data.labels as Record<string, string>);
        if (model.event(event)) changed();
      },
    }),
    nc.subscribe(subjects.allMetrics(), {
      callback: (_err, msg) => {
        try {
          traffic.add(fromWire(decode(msg.data, 'metrics report')), Date.now());
        } catch {
          // A report of another layout or version: the collector refuses those too.
        }
      },
    }),
  ];
  stops.push(() => subs.forEach((s) => s.unsubscribe()));

  /** Follow one bucket once it exists; each entry is decoded (undefined when unreadable or deleted). */
  const follow = (bucket: string | undefined, apply: (key: string, value: unknown) => void) => {
    if (!bucket) return;
    const attempt = async () => {
      if (closed) return;
      try {
        const kv = await openKv(nc, bucket, { bindOnly: true, settleMs: 0 });
        const stop = await followKv(kv, ({ key, value }) => {
          let decoded: unknown;
          try {
            decoded = value && decodeJson(value, bucket);
          } catch {
            decoded = undefined;
          }
          apply(key, decoded);
          changed();
        });
        if (closed) stop();
        else stops.push(stop);
      } catch {
        const timer = setTimeout(() => (timers.delete(timer), void attempt()), BUCKET_RETRY_MS);
        timer.unref();
        timers.add(timer);
      }
    };
    void attempt();
  };
  const decoded = <T>(check: (v: unknown) => T, value: unknown): T | undefined => {
    if (value === undefined) return undefined;
    try {
      return check(value);
    } catch {
      return undefined;
    }
  };
  follow(subjects.buckets.weights, (key, v) => model.weights(key, decoded((x) => weightsKind.decode(x), v)));
  follow(subjects.buckets.apps, (key, v) => model.revision(key, decoded((x) => appRevisionKind.decode(x), v)));
  follow(subjects.buckets.appStatus, (key, v) => model.status(key, decoded((x) => appStatusKind.decode(x), v)));
  follow(subjects.buckets.canaries, (key, v) => model.canary(key, decoded(checkCanaryState, v)));

  const pingAll = async () => {
    for (const inv of await control.pingHosts({ waitMs: 1000 }).catch(() => [])) model.inventory(inv, Date.now());
    changed();
  };
  // While the dashboard's own NATS connection is down, hosts miss no beats: the page says the
  // dashboard is cut off instead of showing the lattice dying, and asks every host again after.
  void (async () => {
    for await (const s of nc.status()) {
      if (closed) break;
      if (s.type === 'disconnect') model.connection(false, Date.now());
      else if (s.type === 'reconnect') {
        model.connection(true, Date.now());
        await pingAll();
      } else continue;
      changed();
    }
  })().catch(() => undefined);

  await nc.flush();
  await pingAll();

  return {
    close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      for (const stop of stops) stop();
    },
  };
}
