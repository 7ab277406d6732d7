/** Host metrics, declared in one place with fixed label names, on a per-host registry. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { WindowAccumulator } from '../lattice/metrics/index.ts';

/** Create the metric set of one host. A registry per host keeps in-process test hosts apart. */
export function createHostMetrics(bindings: { hostId: string; lattice: string }) {
  const registry = new Registry();
  registry.setDefaultLabels({ host_id: bindings.hostId, lattice: bindings.lattice });
  collectDefaultMetrics({ register: registry });
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
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    /** Per-version traffic windows shipped over NATS for canary analysis (lattice/metrics). */
    traffic: new WindowAccumulator(),
    uptime: new Gauge({ name: 'trellis_host_uptime_seconds', help: 'Seconds since the host started', registers: [registry] }),
    natsReconnects: new Counter({ name: 'trellis_nats_reconnects_total', help: 'Times this participant reconnected to NATS', registers: [registry] }),
  };
}

export type HostMetrics = ReturnType<typeof createHostMetrics>;
