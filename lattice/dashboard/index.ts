/**
 * The live lattice dashboard: `trellis dashboard` and `trellis up` serve one web page that shows
 * hosts by cloud, actors and versions, live traffic per version, weights, canaries, apps and
 * events, updated over server-sent events from NATS.
 * - model.ts, traffic.ts, events.ts: the pure state and its view (unit-tested).
 * - feeds.ts: what the dashboard follows on NATS. server.ts: HTTP, SSE and the page's files.
 * - page/: the page itself, plain HTML, CSS and JS with no dependencies.
 */
export { DEFAULT_DASHBOARD_LISTEN, startDashboard, type Dashboard, type DashboardOptions } from './server.ts';
export { DashboardModel, type AppCard, type DashboardView, type Health, type HostCard } from './model.ts';
export { Traffic, type SeriesHistory, type TrafficPoint, type TrafficTick, type VersionTraffic } from './traffic.ts';
export { eventRow, type EventRow } from './events.ts';
