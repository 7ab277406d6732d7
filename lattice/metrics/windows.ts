/**
 * Per-version traffic windows, the pure part: what a reporter accumulates between two publishes,
 * its wire form, and merging the reports of many participants over a time range. Histograms use
 * the lattice-wide bucket bounds (lattice/canary/histogram.ts), so merging adds bucket counts and
 * percentiles come from the merged counts.
 */
import { TrellisError } from '../errors/index.ts';
import type { VersionTotals } from '../canary/analysis.ts';
import { emptyHistogram, histogramFromWire, histogramToWire, mergeInto, observe, total, type Histogram } from '../canary/histogram.ts';
import { isRecord, type HistogramWire, type VersionWindow } from '../wire/index.ts';

/** What one participant saw of one actor version during one window. */
export interface VersionCounts {
  actor: string;
  version: string;
  /** Requests answered (or, for a caller, failed before reaching a host). */
  requests: number;
  /** Of those: 5xx responses and Trellis errors. */
  failures: number;
  /** Latency bucket counts (ms) with the shared bounds. */
  histogram: Histogram;
}

/** One published window of one participant. */
export interface MetricsReport {
  /** Host id, `gateway-<id>`, ...: who counted. */
  participant: string;
  /** Epoch ms of the window, by the reporter's clock (informational: collectors use arrival time). */
  from: number;
  to: number;
  versions: VersionCounts[];
}

/**
 * The accumulator of a reporter: one mutable entry per actor version, kept across windows so a
 * caller can hold its entry and count with a few additions (see entry()).
 */
export class WindowAccumulator {
  readonly #entries = new Map<string, VersionCounts>();
  #from = Date.now();

  /** The entry of actor@version; callers may keep it: take() zeroes entries in place. */
  entry(actor: string, version: string): VersionCounts {
    const key = `${actor}\u0000${version}`;
    let e = this.#entries.get(key);
    if (!e) this.#entries.set(key, (e = { actor, version, requests: 0, failures: 0, histogram: emptyHistogram() }));
    return e;
  }

  /** Count `requests` calls of which `failures` failed, with their latencies (ms) when known. */
  add(actor: string, version: string, requests: number, failures: number, latenciesMs: readonly number[] = []): void {
    const e = this.entry(actor, version);
    e.requests += requests;
    e.failures += failures;
    for (const ms of latenciesMs) observe(e.histogram, ms);
  }

  /** The window since the last take (undefined when nothing was counted), and start a new one. */
  take(participant: string, now = Date.now()): MetricsReport | undefined {
    const versions: VersionCounts[] = [];
    for (const e of this.#entries.values()) {
      if (e.requests === 0 && e.failures === 0 && total(e.histogram) === 0) continue;
      versions.push({ actor: e.actor, version: e.version, requests: e.requests, failures: e.failures, histogram: { counts: [...e.histogram.counts], sumMs: e.histogram.sumMs } });
      e.requests = 0;
      e.failures = 0;
      e.histogram.counts.fill(0);
      e.histogram.sumMs = 0;
    }
    const from = this.#from;
    this.#from = now;
    return versions.length === 0 ? undefined : { participant, from, to: now, versions };
  }
}

/**
 * Wire form, short keys (50 hosts send one a second): histograms as the run of buckets between
 * the first and the last non-zero one, with the layout's schema so a collector refuses reports
 * of another layout instead of mixing them (lattice/canary/histogram.ts).
 */
interface WireReport {
  p: string;
  f: number;
  t: number;
  v: [actor: string, version: string, window: VersionWindow][];
}

export function toWire(report: MetricsReport): WireReport {
  return {
    p: report.participant,
    f: report.from,
    t: report.to,
    v: report.versions.map((c) => [c.actor, c.version, { requests: c.requests, failures: c.failures, histogram: histogramToWire(c.histogram) }]),
  };
}

const count = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/** Decode a wire report; throws TRELLIS_BAD_REQUEST naming what is wrong. */
export function fromWire(value: unknown): MetricsReport {
  const bad = (why: string) => new TrellisError('TRELLIS_BAD_REQUEST', `metrics report: ${why}`);
  if (!isRecord(value) || typeof value.p !== 'string' || !Array.isArray(value.v)) throw bad('needs p (participant) and v (versions)');
  const versions = value.v.map((row: unknown) => {
    if (!Array.isArray(row) || row.length !== 3) throw bad('a version row is [actor, version, window]');
    const [actor, version, w] = row as unknown[];
    if (typeof actor !== 'string' || typeof version !== 'string' || !isRecord(w) || !count(w.requests) || !count(w.failures)) throw bad('a version row needs actor, version and counts');
    return { actor, version, requests: w.requests, failures: w.failures, histogram: histogramFromWire(w.histogram as HistogramWire) };
  });
  return { participant: value.p, from: Number(value.f) || 0, to: Number(value.t) || 0, versions };
}

/**
 * Merge the counts of `actor` from `reports` into one total per version: the input of the
 * canary analysis (lattice/canary/analysis.ts; its summarize() gives rates and percentiles).
 */
export function mergeVersions(reports: Iterable<MetricsReport>, actor: string): Record<string, VersionTotals> {
  // A Map: a foreign report's version string must not reach an object's prototype.
  const merged = new Map<string, VersionTotals>();
  for (const report of reports) {
    for (const c of report.versions) {
      if (c.actor !== actor) continue;
      let m = merged.get(c.version);
      if (!m) merged.set(c.version, (m = { requests: 0, failures: 0, histogram: emptyHistogram() }));
      m.requests += c.requests;
      m.failures += c.failures;
      mergeInto(m.histogram, c.histogram);
    }
  }
  return Object.fromEntries(merged);
}
