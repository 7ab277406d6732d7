/**
 * Per-version traffic windows shipped over NATS, for canary analysis across the whole lattice
 * (a controller cannot scrape every node's Prometheus endpoint across clouds).
 *
 * Every host reports what it served and every caller (gateway, RPC clients) only the failures
 * that never reached a host (no responders, deadline), so nothing counts twice. Reporters count
 * in memory and publish one msgpack message per period (~1 s) when anything was counted: nothing
 * is sent per call. A collector subscribes to every participant's reports and merges them over a
 * time range by arrival time (reporters' clocks may disagree across clouds).
 */
import type { NatsConnection, Subscription } from 'nats';
import type { Subjects } from '../subjects/index.ts';
import { decode, encode } from '../wire/index.ts';
import type { VersionTotals } from '../canary/analysis.ts';
import { WindowAccumulator, fromWire, mergeVersions, toWire, type MetricsReport } from './windows.ts';

export { WindowAccumulator, fromWire, mergeVersions, toWire, type MetricsReport, type VersionCounts } from './windows.ts';

/** A participant's reporter. */
export interface MetricsReporter {
  readonly participant: string;
  /** The accumulator counted into; entries may be kept by callers (see WindowAccumulator.entry). */
  readonly window: WindowAccumulator;
  /** Publish what was counted now (tests, shutdown); resolves once flushed to the server. */
  flush(): Promise<void>;
  /** Publish the last window and stop. */
  close(): Promise<void>;
}

/** Default reporting period. */
export const METRICS_PERIOD_MS = 1000;

/** Start reporting for `participant` (a subject token: host id, `gateway-<id>`...). */
export function startMetricsReporter(nc: NatsConnection, subjects: Subjects, participant: string, options: { periodMs?: number; window?: WindowAccumulator } = {}): MetricsReporter {
  const subject = subjects.metrics(participant);
  const window = options.window ?? new WindowAccumulator();
  const publish = () => {
    const report = window.take(participant);
    if (report && !nc.isClosed()) nc.publish(subject, encode(toWire(report)));
  };
  const timer = setInterval(publish, options.periodMs ?? METRICS_PERIOD_MS);
  // A reporter never keeps a process alive on its own.
  timer.unref();
  let closed = false;
  return {
    participant,
    window,
    async flush() {
      publish();
      if (!nc.isClosed()) await nc.flush();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      publish();
      if (!nc.isClosed()) await nc.flush().catch(() => {});
    },
  };
}

/** Reports as a collector keeps them. */
interface Arrived {
  at: number;
  report: MetricsReport;
}

/** Merges every participant's windows for the controller. */
export interface MetricsCollector {
  /**
   * Per version of `actor`, the merged counts of reports that arrived in [fromMs, toMs]: what
   * the canary analysis judges (summarize() in lattice/canary/analysis.ts gives rates and p99).
   */
  window(actor: string, fromMs: number, toMs?: number): Record<string, VersionTotals>;
  /** Participants heard from since `sinceMs` (to tell "no data" from "nobody reports"). */
  participants(sinceMs: number): string[];
  /** Reports that could not be decoded (mixed versions, foreign publishers). */
  readonly rejected: number;
  close(): void;
}

/** Subscribe to the lattice's metrics; reports are kept for `retainMs` (default 10 min). */
export async function collectMetrics(nc: NatsConnection, subjects: Subjects, options: { retainMs?: number } = {}): Promise<MetricsCollector> {
  const retainMs = options.retainMs ?? 10 * 60_000;
  // Arrival order is time order: pruning drops from the front.
  const arrived: Arrived[] = [];
  let rejected = 0;
  let prunedAt = 0;
  const prune = (now: number) => {
    let drop = 0;
    while (drop < arrived.length && arrived[drop]!.at < now - retainMs) drop++;
    if (drop > 0) arrived.splice(0, drop);
  };
  const sub: Subscription = nc.subscribe(subjects.allMetrics(), {
    callback: (_err, msg) => {
      try {
        const now = Date.now();
        arrived.push({ at: now, report: fromWire(decode(msg.data, 'metrics report')) });
        // At most once a second: a splice moves every kept report.
        if (now - prunedAt >= 1000) (prunedAt = now), prune(now);
      } catch {
        rejected++;
      }
    },
  });
  // The subscription is registered with the server before anyone relies on it.
  await nc.flush();
  // Arrival times ascend: the range starts where a binary search says (50 hosts keep 30,000
  // reports over 10 minutes, and an analysis reads only its last interval).
  const inRange = function* (fromMs: number, toMs: number) {
    let lo = 0;
    let hi = arrived.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (arrived[mid]!.at < fromMs) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < arrived.length && arrived[i]!.at <= toMs; i++) yield arrived[i]!.report;
  };
  return {
    window: (actor, fromMs, toMs = Date.now()) => mergeVersions(inRange(fromMs, toMs), actor),
    participants(sinceMs) {
      const seen = new Set<string>();
      for (const r of inRange(sinceMs, Infinity)) seen.add(r.participant);
      return [...seen].sort();
    },
    get rejected() {
      return rejected;
    },
    close: () => sub.unsubscribe(),
  };
}
