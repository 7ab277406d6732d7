/** Gateway metrics, declared in one place with fixed label names, on a per-gateway registry. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Create the metric set of one gateway (a registry each, so in-process gateways stay apart). */
export function createGatewayMetrics(lattice: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ lattice });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({ name: 'trellis_gateway_requests_total', help: 'HTTP requests by route, actor, version and status', labelNames: ['route', 'actor', 'version', 'status'] as const, registers: [registry] }),
    duration: new Histogram({
      name: 'trellis_gateway_request_duration_seconds',
      help: 'HTTP request latency through the gateway',
      labelNames: ['route', 'actor', 'version'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    natsReconnects: new Counter({ name: 'trellis_nats_reconnects_total', help: 'Times this participant reconnected to NATS', registers: [registry] }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
