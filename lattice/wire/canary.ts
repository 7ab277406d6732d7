/**
 * Canary releases on the wire: the per-version metrics window every host and gateway ships,
 * the persisted canary state (one KV document per actor, so a new controller leader continues
 * from the same step), the events a canary emits and the `trellis canary status --json` view.
 * Shared by hosts, gateway, controller, CLI and tests; the logic lives in lattice/canary.
 */
// Type-only: the complete canary settings are validated in lattice/apps; nothing loads at run time.
import type { CanarySpec } from '../apps/canary.ts';

export const CanaryPhases = ['Progressing', 'Paused', 'Promoted', 'RolledBack', 'Aborted'] as const;
export type CanaryPhase = (typeof CanaryPhases)[number];

/** Phases in which a canary run is over: nothing but a new `start` changes it. */
export const TerminalCanaryPhases: readonly CanaryPhase[] = ['Promoted', 'RolledBack', 'Aborted'];

/**
 * A latency histogram over the one bucket layout every reporter shares (lattice/canary
 * histogram.ts, identified by `schema`). Only the run of buckets from the first to the last
 * non-zero one travels: `counts[i]` is bucket `offset + i`. Latencies cluster, so a window is
 * a handful of numbers however wide the layout is.
 */
export interface HistogramWire {
  schema: number;
  offset: number;
  counts: number[];
  /** Sum of the observed latencies in ms (for a mean; quantiles come from the buckets). */
  sumMs: number;
}

/**
 * What one reporter saw of one actor version over a window. `failures` counts 5xx responses
 * and Trellis errors; `requests` includes them. A caller reports only the failures that never
 * reached a host (no responders, deadline), so a request is counted once, by one reporter;
 * hence the histogram may hold fewer entries than `requests`.
 */
export interface VersionWindow {
  requests: number;
  failures: number;
  histogram: HistogramWire;
}

/** One version's window as `canary status` shows it. Rates and latencies are absent without data. */
export interface VersionSummary {
  requests: number;
  failures: number;
  successRate?: number;
  p50Ms?: number;
  p99Ms?: number;
}

/** A version's window in `canary status --json`: every key always present (null without data). */
export interface VersionSummaryView {
  requests: number;
  failures: number;
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}

/** What a history entry records. */
export type CanaryHistoryDecision =
  | 'started'
  | 'restarted'
  | 'step'
  | 'failed-check'
  | 'rolled-back'
  | 'promoted'
  | 'promote-full-requested'
  | 'paused'
  | 'resumed'
  | 'aborted';

export interface CanaryHistoryEntry {
  /** ISO time of the decision. */
  at: string;
  decision: CanaryHistoryDecision;
  reason: string;
  /** The measurements and limits behind the decision, e.g. successRate, minSuccessRate. */
  numbers?: Record<string, number>;
  /** The step and canary weight after the decision. */
  step: number;
  weight: number;
}

/** The persisted state of one actor's canary (latest run). Times are ISO strings. */
export interface CanaryState {
  actor: string;
  /** The app whose desired state moves to the canary version on promotion. */
  app?: string;
  /** The version serving before this run. After promotion, the canary is the stable one. */
  stable: string;
  canary: string;
  /** The canary's artifact, when known: the same version from another artifact is a new run. */
  canaryDigest?: string;
  phase: CanaryPhase;
  /** 1-based index into `steps`; 0 before the first step (canary not serving yet). */
  step: number;
  steps: number[];
  weight: { set: number };
  failedChecks: number;
  failureLimit: number;
  /** The thresholds in force, kept with the run so a new leader judges it the same way. */
  spec: CanarySpec;
  /** Which run this is; a new `start` makes a new generation, and stale decisions are ignored. */
  generation: number;
  startedAt: string;
  stepStartedAt: string;
  /** Start of the window being collected, and the time the progress deadline counts from. */
  windowStartedAt: string;
  /** End of the last window that held enough canary requests to be judged. */
  lastDataAt?: string;
  pausedAt?: string;
  endedAt?: string;
  /** `promote --full` asked for before the canary served: promoted as soon as it does. */
  promoteFull?: boolean;
  /** Newest last; bounded (lattice/canary keeps the most recent entries). */
  history: CanaryHistoryEntry[];
}

export const CanaryEventKinds = ['canary_started', 'canary_step', 'canary_paused', 'canary_promoted', 'canary_rolled_back', 'canary_aborted'] as const;
export type CanaryEventKind = (typeof CanaryEventKinds)[number];

/** The data of every canary event (the controller adds its `leader`). */
export interface CanaryEventPayload {
  actor: string;
  app?: string;
  stable: string;
  canary: string;
  generation: number;
  phase: CanaryPhase;
  step: number;
  weight: number;
  failedChecks: number;
  reason: string;
  numbers?: Record<string, number>;
}

/** `trellis canary status --json`. */
export interface CanaryStatusView {
  actor: string;
  app?: string;
  stable: string;
  canary: string;
  phase: CanaryPhase;
  step: number;
  steps: number[];
  /** `actual`: the canary's measured share of requests in the last window (null without data). */
  weight: { set: number; actual: number | null };
  failedChecks: number;
  failureLimit: number;
  generation: number;
  window: { stable: VersionSummaryView; canary: VersionSummaryView };
  history: { at: string; decision: CanaryHistoryDecision; reason: string; numbers?: Record<string, number> }[];
}
