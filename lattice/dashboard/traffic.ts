/**
 * Live traffic for the dashboard, the pure part: the per-version windows every host and gateway
 * publishes (lattice/metrics) are kept for a few seconds by arrival time, and once a second each
 * actor version gets one chart point — requests/s, error rate and p99 over that sliding window.
 * The p99 is read from the merged histogram of every reporter (lattice/canary/histogram.ts), never
 * averaged from per-host percentiles: a slow host with half the traffic must show.
 */
import { emptyTotals, summarize, type AnalysisWindow, type VersionTotals } from '../canary/analysis.ts';
import { mergeInto } from '../canary/histogram.ts';
import type { MetricsReport } from '../metrics/index.ts';

/** Width of the sliding window a point is computed over: reports arrive about once a second per reporter. */
export const TRAFFIC_WINDOW_MS = 5000;
/** Points kept per series (one a second): two minutes of chart. */
export const SERIES_POINTS = 120;

/** One chart point of one actor version. `errorRate` and `p99Ms` are null without requests. */
export interface TrafficPoint {
  t: number;
  rps: number;
  errorRate: number | null;
  p99Ms: number | null;
}

/** The latest numbers of one actor version, with its totals since the dashboard started. */
export interface VersionTraffic extends TrafficPoint {
  actor: string;
  version: string;
  /** Requests and failures counted since the dashboard started. */
  requests: number;
  failures: number;
}

/** What a tick yields: every version's latest point, and each reporter's requests/s (a host's load). */
export interface TrafficTick {
  t: number;
  versions: VersionTraffic[];
  participants: Record<string, number>;
}

/** Series in the form the page draws: parallel arrays per `actor@version`. */
export interface SeriesHistory {
  actor: string;
  version: string;
  t: number[];
  rps: number[];
  errorRate: (number | null)[];
  p99Ms: (number | null)[];
}

const keyOf = (actor: string, version: string) => `${actor}@${version}`;

/** Keeps the recent reports and the chart series; feed it reports, tick it once a second. */
export class Traffic {
  readonly #windowMs: number;
  readonly #points: number;
  /** Arrival order is time order: pruning drops from the front. */
  readonly #arrived: { at: number; report: MetricsReport }[] = [];
  readonly #totals = new Map<string, { requests: number; failures: number }>();
  readonly #series = new Map<string, SeriesHistory>();

  constructor(options: { windowMs?: number; points?: number } = {}) {
    this.#windowMs = options.windowMs ?? TRAFFIC_WINDOW_MS;
    this.#points = options.points ?? SERIES_POINTS;
  }

  /** A report arrived (at `now`, by this process's clock: reporters' clocks may disagree). */
  add(report: MetricsReport, now: number): void {
    this.#arrived.push({ at: now, report });
    for (const v of report.versions) {
      const key = keyOf(v.actor, v.version);
      const t = this.#totals.get(key) ?? { requests: 0, failures: 0 };
      t.requests += v.requests;
      t.failures += v.failures;
      this.#totals.set(key, t);
    }
  }

  /** Merged totals per actor version over the window ending at `now`. */
  #window(now: number): Map<string, VersionTotals & { actor: string; version: string }> {
    while (this.#arrived.length > 0 && this.#arrived[0]!.at <= now - this.#windowMs) this.#arrived.shift();
    const merged = new Map<string, VersionTotals & { actor: string; version: string }>();
    for (const { report } of this.#arrived) {
      for (const v of report.versions) {
        const key = keyOf(v.actor, v.version);
        let m = merged.get(key);
        if (!m) merged.set(key, (m = { ...emptyTotals(), actor: v.actor, version: v.version }));
        m.requests += v.requests;
        m.failures += v.failures;
        mergeInto(m.histogram, v.histogram);
      }
    }
    return merged;
  }

  /** Requests/s per reporter over the window (a host's served load). */
  #participants(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { report } of this.#arrived) {
      let n = 0;
      for (const v of report.versions) n += v.requests;
      out[report.participant] = (out[report.participant] ?? 0) + n;
    }
    for (const p of Object.keys(out)) out[p] = round(out[p]! / (this.#windowMs / 1000));
    return out;
  }

  /**
   * Compute one point per version at `now` and append it to the series. Versions that had
   * traffic keep a series (with zero points) until it scrolled out of the chart.
   */
  tick(now: number): TrafficTick {
    const merged = this.#window(now);
    const versions: VersionTraffic[] = [];
    const seen = new Set<string>();
    for (const [key, m] of merged) {
      seen.add(key);
      versions.push(this.#append(key, m.actor, m.version, pointOf(m, now, this.#windowMs)));
    }
    for (const [key, s] of this.#series) {
      if (seen.has(key)) continue;
      if (s.rps.every((r) => r === 0) && s.rps.length >= this.#points) {
        this.#series.delete(key);
        continue;
      }
      versions.push(this.#append(key, s.actor, s.version, { t: now, rps: 0, errorRate: null, p99Ms: null }));
    }
    versions.sort((a, b) => a.actor.localeCompare(b.actor) || a.version.localeCompare(b.version, undefined, { numeric: true }));
    return { t: now, versions, participants: this.#participants() };
  }

  #append(key: string, actor: string, version: string, p: TrafficPoint): VersionTraffic {
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = { actor, version, t: [], rps: [], errorRate: [], p99Ms: [] }));
    s.t.push(p.t);
    s.rps.push(p.rps);
    s.errorRate.push(p.errorRate);
    s.p99Ms.push(p.p99Ms);
    if (s.t.length > this.#points) for (const a of [s.t, s.rps, s.errorRate, s.p99Ms]) a.splice(0, a.length - this.#points);
    const totals = this.#totals.get(key) ?? { requests: 0, failures: 0 };
    return { actor, version, ...p, requests: totals.requests, failures: totals.failures };
  }

  /** Every series so far (a new page starts its charts from these). */
  history(): SeriesHistory[] {
    return [...this.#series.values()].map((s) => ({ ...s, t: [...s.t], rps: [...s.rps], errorRate: [...s.errorRate], p99Ms: [...s.p99Ms] }));
  }

  /** The stable and canary totals over the current window: a canary's live numbers (lattice/canary statusView). */
  analysisWindow(actor: string, stable: string, canary: string, now: number): AnalysisWindow | undefined {
    const merged = this.#window(now);
    const s = merged.get(keyOf(actor, stable));
    const c = merged.get(keyOf(actor, canary));
    if (!s && !c) return undefined;
    return { stable: s ?? emptyTotals(), canary: c ?? emptyTotals() };
  }
}

function pointOf(m: VersionTotals, now: number, windowMs: number): TrafficPoint {
  const summary = summarize(m);
  return {
    t: now,
    rps: round(m.requests / (windowMs / 1000)),
    errorRate: m.requests > 0 ? round(m.failures / m.requests, 4) : null,
    p99Ms: summary.p99Ms ?? null,
  };
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
