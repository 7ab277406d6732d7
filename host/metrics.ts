/**
 * Host metrics, declared in one place with fixed label names, on a per-host registry. The
 * dashboards in deploy/grafana read these names (test/grafana.test.ts checks them against this
 * registry). Pool gauges and cold starts are read from the runtime when Prometheus scrapes, so
 * no invocation pays for them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { WindowAccumulator } from '../lattice/metrics/index.ts';
import type { ActorStats } from './runtime/index.ts';

/** One actor version's pool, as the host reports it at scrape time. */
export interface PoolSample {
  actor: string;
  version: string;
  stats: ActorStats;
}

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Create the metric set of one host. A registry per host keeps in-process test hosts apart. */
export function createHostMetrics(bindings: { hostId: string; lattice: string }) {
  const registry = new Registry();
  registry.setDefaultLabels({ host_id: bindings.hostId, lattice: bindings.lattice });
  collectDefaultMetrics({ register: registry });
  let pools: () => PoolSample[] = () => [];
  // Counters read from the pools' own totals: what grew since the last scrape is added.
  const seen = new Map<string, { coldStarts: number; workersReplaced: number }>();
  const labels = ['actor', 'version'] as const;
  /** Add what the pools' totals grew by since the last scrape (idempotent within one). */
  const catchUp = () => {
    for (const p of pools()) {
      const key = `${p.actor}@${p.version}`;
      const before = seen.get(key) ?? { coldStarts: 0, workersReplaced: 0 };
      // A reloaded pool starts from zero again: then all of it is new.
      const cold = p.stats.coldStarts >= before.coldStarts ? p.stats.coldStarts - before.coldStarts : p.stats.coldStarts;
      const replaced = p.stats.workersReplaced >= before.workersReplaced ? p.stats.workersReplaced - before.workersReplaced : p.stats.workersReplaced;
      // Incremented by 0 too: a series exists from the first scrape, so rate() has a start.
      coldStarts.inc({ actor: p.actor, version: p.version }, cold);
      workersReplaced.inc({ actor: p.actor, version: p.version }, replaced);
      seen.set(key, { coldStarts: p.stats.coldStarts, workersReplaced: p.stats.workersReplaced });
    }
  };
  const coldStarts: Counter<'actor' | 'version'> = new Counter({ name: 'trellis_cold_starts_total', help: 'Invocations that had to instantiate the actor first', labelNames: labels, registers: [registry], collect: catchUp });
  const workersReplaced: Counter<'actor' | 'version'> = new Counter({ name: 'trellis_workers_replaced_total', help: 'Actor workers terminated (overrun, crash) and replaced', labelNames: labels, registers: [registry], collect: catchUp });
  const gauge = (name: string, help: string, read: (s: ActorStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: labels,
      registers: [registry],
      collect() {
        this.reset();
        for (const p of pools()) this.set({ actor: p.actor, version: p.version }, read(p.stats));
      },
    });
  gauge('trellis_actor_instances', 'Live instances (worker threads) of an actor version', (s) => s.instances);
  gauge('trellis_actor_busy_instances', 'Instances running an invocation now', (s) => s.busy);
  gauge('trellis_actor_queued_invocations', 'In-process invocations waiting for a free instance', (s) => s.queued);
  gauge('trellis_actor_pool_saturation', 'Busy instances over live instances (1: every instance busy)', (s) => (s.instances === 0 ? 0 : s.busy / s.instances));
  new Gauge({ name: 'trellis_actor_versions', help: 'Actor versions running on this host', registers: [registry], collect() { this.set(pools().length); } });
  return {
    registry,
    controlRequests: new Counter({
      name: 'trellis_control_requests_total',
      help: 'Control requests handled, by operation and result code (ok or an error code)',
      labelNames: ['op', 'result'] as const,
      registers: [registry],
    }),
    heartbeats: new Counter({ name: 'trellis_heartbeats_total', help: 'Heartbeats published', registers: [registry] }),
    invocations: new Counter({
      name: 'trellis_invocations_total',
      help: 'Actor invocations served by this host, by actor, version and result (ok or an error code)',
      labelNames: ['actor', 'version', 'result'] as const,
      registers: [registry],
    }),
    invocationSeconds: new Histogram({
      name: 'trellis_invocation_duration_seconds',
      help: 'Time from receiving an invocation to sending its reply',
      labelNames: ['actor', 'version'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    /** Time in-process invocations waited for a free instance (lattice calls wait in NATS). */
    queueWaitSeconds: new Histogram({
      name: 'trellis_invocation_queue_wait_seconds',
      help: 'Time an in-process invocation waited for a free instance',
      labelNames: ['actor', 'version'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    /** Tell the metrics where the pools are (read at scrape time). */
    observePools(source: () => PoolSample[]) {
      pools = source;
    },
    /** Per-version traffic windows shipped over NATS for canary analysis (lattice/metrics). */
    traffic: new WindowAccumulator(),
    uptime: new Gauge({ name: 'trellis_host_uptime_seconds', help: 'Seconds since the host started', registers: [registry] }),
    natsReconnects: new Counter({ name: 'trellis_nats_reconnects_total', help: 'Times this participant reconnected to NATS', registers: [registry] }),
  };
}

export type HostMetrics = ReturnType<typeof createHostMetrics>;
