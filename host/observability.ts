/**
 * A host's observability wiring, kept out of host.ts: its log lines published to the lattice,
 * its tracers (off unless an OTLP endpoint is configured), the NATS reconnect counter, and the
 * bounded streams `trellis logs/events --since` read.
 */
import type { NatsConnection } from 'nats';
import { ensureEventStream } from '../lattice/events/index.ts';
import { createLogger, ensureLogStream, LatticeLogSink, type Logger } from '../lattice/log/index.ts';
import type { LogLevel } from '../lattice/options/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';
import { startTracing, type Tracing } from '../lattice/telemetry/index.ts';
import type { HostMetrics } from './metrics.ts';

/** What a host observes itself with. */
export interface HostObservability {
  readonly logger: Logger;
  /** The host's tracer (service trellis-host), or undefined when tracing is off. */
  readonly tracing?: Tracing;
  /** Publish logs and count reconnects on the host's connection, once it exists. */
  attach(nc: NatsConnection, subjects: Subjects, metrics: HostMetrics): void;
  /** The in-process gateway's tracer (service trellis-gateway), when tracing is on. */
  gatewayTracing(): Promise<Tracing | undefined>;
  /** Create the log and event streams if missing; resolves (never throws) once done or failed. */
  ensureStreams(nc: NatsConnection, subjects: Subjects): Promise<void>;
  /** Stop publishing log lines (before the connection drains). */
  detachLogs(): void;
  /** Flush and stop the tracers. */
  closeTracing(): Promise<void>;
}

/** Set up a host's logger and tracer (before it connects). */
export async function startHostObservability(options: { id: string; lattice: string; logLevel: LogLevel; otlpEndpoint?: string; version: string }, env: NodeJS.ProcessEnv): Promise<HostObservability> {
  const { id, lattice } = options;
  // Every line also goes to the lattice (once connected), where `trellis logs` reads it.
  const sink = new LatticeLogSink();
  const logger = createLogger({ component: 'host', level: options.logLevel, lattice: sink }).child({ hostId: id, lattice });
  const tracingOf = (service: string) => startTracing({ service, lattice, instanceId: id, endpoint: options.otlpEndpoint, version: options.version }, env);
  // Off (nothing loaded) unless an OTLP endpoint is configured.
  const tracing = await tracingOf('trellis-host');
  let gateway: Promise<Tracing | undefined> | undefined;
  return {
    logger,
    tracing,
    attach(nc, subjects, metrics) {
      sink.attach(nc, subjects, id);
      void (async () => {
        for await (const s of nc.status()) if (s.type === 'reconnect') metrics.natsReconnects.inc();
      })().catch(() => {});
    },
    gatewayTracing: () => (gateway ??= tracing ? tracingOf('trellis-gateway') : Promise.resolve(undefined)),
    ensureStreams: (nc, subjects) =>
      Promise.all([ensureLogStream(nc, subjects), ensureEventStream(nc, subjects)]).then(
        () => {},
        (err: unknown) => logger.warn({ err: (err as Error).message }, 'no log and event history (JetStream unavailable?): `trellis logs --since` and `trellis events --since` will not find it'),
      ),
    detachLogs: () => sink.detach(),
    async closeTracing() {
      await Promise.all([tracing?.shutdown(), gateway?.then((t) => t?.shutdown())]);
    },
  };
}
