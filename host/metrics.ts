/** Host metrics, declared in one place with fixed label names, on a per-host registry. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

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
    uptime: new Gauge({ name: 'trellis_host_uptime_seconds', help: 'Seconds since the host started', registers: [registry] }),
  };
}

export type HostMetrics = ReturnType<typeof createHostMetrics>;
