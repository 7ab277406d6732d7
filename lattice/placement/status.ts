/**
 * An app's observed status from its plan (desired and placed counts, reasons) and the host
 * inventories (what runs: warm instances count as ready to serve).
 */
import { TrellisError } from '../errors/index.ts';
import type { AppPhase, AppRevision, AppStatus, SpreadStatus } from '../wire/apps.ts';
import { matches } from './shares.ts';
import type { ActorPlacement, PlacementHost, PlacementPlan, StatusOptions } from './types.ts';

const keyOf = (g: { name: string; version: string; digest: string }) => `${g.name}@${g.version}@${g.digest}`;

export function status(app: AppRevision, hosts: readonly PlacementHost[], plan: PlacementPlan, options: StatusOptions): AppStatus {
  const placed = plan.apps.find((a) => a.name === app.name);
  if (!placed || placed.revision !== app.revision) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `the plan holds no entry for app ${app.name} at revision ${app.revision}: compute the status from the plan made with this revision`);
  }
  // What runs now, per version and build, and per host.
  const running = new Map<string, number>();
  const perHost = new Map<string, Map<PlacementHost, number>>();
  for (const host of hosts) {
    for (const g of host.actors) {
      if (g.owner?.app !== app.name || g.instances <= 0) continue;
      const k = keyOf(g);
      running.set(k, (running.get(k) ?? 0) + g.instances);
      let on = perHost.get(k);
      if (!on) perHost.set(k, (on = new Map()));
      on.set(host, (on.get(host) ?? 0) + g.instances);
    }
  }
  const entries: ActorPlacement[] = [...placed.actors];
  const known = new Set(entries.map(keyOf));
  // Groups that appeared since the plan was made (another leader's, a late inventory).
  for (const k of running.keys()) {
    if (known.has(k)) continue;
    const [name, version, digest] = splitKey(k);
    entries.push({ name, version, digest, current: false, desired: 0, placed: 0, running: 0, spreads: [] });
  }
  const reasons: string[] = [];
  if (placed.error) reasons.push(`the spec cannot be planned: ${placed.error}`);
  if (placed.stale) reasons.push(placed.stale);
  const failures = options.failures ?? [];
  const actors: AppStatus['actors'] = [];
  let failed = false;
  let failing = false;
  let unplaceable = false;
  let complete = true;
  for (const e of entries) {
    const k = keyOf(e);
    const now = running.get(k) ?? 0;
    const label = `${e.name}@${e.version}`;
    if (!e.current) {
      if (now === 0) continue;
      if (!placed.deleting) {
        complete = false;
        reasons.push(`${label}: ${now} instance${now === 1 ? '' : 's'} of a previous version or build still running`);
      }
      actors.push({ name: e.name, version: e.version, desired: 0, running: now, spreads: [] });
      continue;
    }
    const spec = app.spec.actors.find((a) => keyOf(a) === k);
    const spreads: SpreadStatus[] = e.spreads.map((s) => ({ name: s.name, desired: s.desired, running: 0, ...(s.reason ? { reason: s.reason } : {}) }));
    if (spec) attribute(spec.replicas, spec.spread, spreads, perHost.get(k) ?? new Map(), hosts);
    for (const s of spreads) {
      if (!s.reason) continue;
      unplaceable = true;
      reasons.push(`${label} spread ${s.name}: ${s.reason}`);
    }
    const mine = failures.filter((f) => f.actor === e.name && f.version === e.version && (f.digest === undefined || f.digest === e.digest));
    for (const f of mine) reasons.push(`${label}: ${f.code}: ${f.message}${f.hostId ? ` (host ${f.hostId})` : ''}`);
    if (mine.length > 0) failing = true;
    if (mine.length > 0 && now === 0) failed = true;
    if (now < e.desired) {
      complete = false;
      reasons.push(`${label}: ${now} of ${e.desired} running`);
    }
    actors.push({ name: e.name, version: e.version, desired: e.desired, running: now, spreads });
  }
  for (const p of placed.providers) {
    for (const s of p.spreads) {
      if (!s.reason) continue;
      unplaceable = true;
      reasons.push(`provider ${p.kind} spread ${s.name}: ${s.reason}`);
    }
    if (p.running < p.desired) complete = false;
  }
  let phase: AppPhase;
  if (placed.deleting) phase = 'Deleting';
  else if (placed.error || failed) phase = 'Failed';
  else if (unplaceable || failing) phase = 'Degraded';
  else if (placed.stale) phase = 'Deploying';
  else if (complete) phase = 'Deployed';
  // Once this revision ran in full, a missing instance is a fault being repaired, not progress.
  else if (options.previous?.revision === app.revision && (options.previous.phase === 'Deployed' || options.previous.phase === 'Degraded')) phase = 'Degraded';
  else phase = 'Deploying';
  const observedAt = typeof options.now === 'string' ? options.now : options.now.toISOString();
  return { name: app.name, revision: app.revision, phase, actors, reasons, observedAt };
}

/**
 * Share the running instances out over the spreads as the planner does: narrowest spread first,
 * each up to its desired count (for `all`, a host counts in the first spread it matches).
 */
function attribute(
  replicas: number | 'all',
  spread: { requirements: Record<string, string> }[],
  out: SpreadStatus[],
  on: Map<PlacementHost, number>,
  hosts: readonly PlacementHost[],
): void {
  if (replicas === 'all') {
    for (const [host, n] of on) {
      const i = spread.findIndex((s) => matches(host.labels, s.requirements));
      if (i >= 0 && n > 0) out[i]!.running++;
    }
    return;
  }
  const left = new Map(on);
  const order = spread.map((s, i) => ({ i, w: hosts.filter((h) => matches(h.labels, s.requirements)).length }));
  order.sort((a, b) => a.w - b.w || a.i - b.i);
  for (const { i } of order) {
    let want = out[i]!.desired;
    for (const [host, n] of left) {
      if (want === 0) break;
      if (n === 0 || !matches(host.labels, spread[i]!.requirements)) continue;
      const take = Math.min(n, want);
      left.set(host, n - take);
      want -= take;
      out[i]!.running += take;
    }
  }
}

function splitKey(k: string): [string, string, string] {
  const at = k.indexOf('@');
  const at2 = k.indexOf('@', at + 1);
  return [k.slice(0, at), k.slice(at + 1, at2), k.slice(at2 + 1)];
}
