/**
 * Canary core: the pure logic of metrics-gated canary releases (no NATS, no I/O, no timers).
 * - histogram.ts: the latency histogram layout every reporter shares; merge; quantiles.
 * - analysis.ts: judge a window against the thresholds of a CanarySpec.
 * - machine.ts: the persisted state machine and its transitions (start, begin, tick, promote,
 *   abort, pause, resume), each with the weights, events and effects it calls for.
 * - sticky.ts: sticky keys (bucket rule) for routing.
 * - state.ts: checking a stored state; the status view.
 * Wire types (CanaryState, VersionWindow, ...) live in lattice/wire/canary.ts.
 */
export {
  BOUNDS,
  BUCKETS,
  HISTOGRAM_SCHEMA,
  bucketIndex,
  emptyHistogram,
  histogramFromWire,
  histogramToWire,
  merge,
  mergeInto,
  mergeWireInto,
  observe,
  quantile,
  total,
  type Histogram,
} from './histogram.ts';
export { NO_DATA, actualWeight, addWindows, analyze, emptyTotals, summarize, windowStart, type AnalysisWindow, type Decision, type DecisionKind, type VersionTotals } from './analysis.ts';
export {
  HISTORY_LIMIT,
  abort,
  begin,
  currentStable,
  isActive,
  pause,
  promote,
  resume,
  start,
  tick,
  type CanaryEffect,
  type CanaryEvent,
  type CanaryTransition,
  type StartInput,
  type WeightsIntent,
} from './machine.ts';
export { cookieValue, stickyBucket, stickyChoice, stickyToCanary } from './sticky.ts';
export { checkCanaryState, statusView, summaryView } from './state.ts';
