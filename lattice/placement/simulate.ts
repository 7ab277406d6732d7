/**
 * What the hosts would report once a plan's actions all succeeded: for `apply --dry-run`
 * previews, and for tests that replan from a plan's own outcome until nothing changes.
 */
import type { PlacementActorGroup, PlacementHost, PlacementPlan, PlacementProvider } from './types.ts';

export interface ApplyOptions {
  /** Actions (by host, actor, version) that fail: the group stays as it was. */
  fails?: (action: { hostId: string; actor: string; version: string; kind: string }) => boolean;
}

export function applyPlan(hosts: readonly PlacementHost[], plan: PlacementPlan, options: ApplyOptions = {}): PlacementHost[] {
  const byId = new Map<string, { host: PlacementHost; actors: PlacementActorGroup[]; providers: PlacementProvider[] }>();
  for (const host of hosts) byId.set(host.id, { host, actors: host.actors.map((a) => ({ ...a })), providers: host.providers.map((p) => ({ ...p, owners: [...(p.owners ?? [])] })) });
  for (const a of plan.actions) {
    const h = byId.get(a.hostId);
    if (!h || options.fails?.(a)) continue;
    const i = h.actors.findIndex((g) => g.name === a.actor && g.version === a.version);
    if (a.kind === 'stop') {
      if (i >= 0) h.actors.splice(i, 1);
    } else if (a.kind === 'start' && i < 0) {
      h.actors.push({ name: a.actor, version: a.version, digest: a.digest, instances: a.count, owner: { ...a.owner } });
    } else if (i >= 0 && a.kind !== 'start') {
      h.actors[i] = { ...h.actors[i]!, instances: a.count, owner: { ...a.owner } };
    }
  }
  for (const p of plan.providers) {
    const h = byId.get(p.hostId);
    if (!h) continue;
    let prov = h.providers.find((x) => x.name === p.provider);
    if (p.kind === 'take') {
      if (!prov) h.providers.push((prov = { name: p.provider, health: 'ok', owners: [] }));
      if (!prov.owners!.includes(p.app)) prov.owners!.push(p.app);
    } else if (prov) {
      prov.owners = prov.owners!.filter((o) => o !== p.app);
      if (prov.owners.length === 0 && !prov.manual) h.providers.splice(h.providers.indexOf(prov), 1);
    }
  }
  return hosts.map((host) => {
    const h = byId.get(host.id)!;
    return { ...host, actors: h.actors, providers: h.providers };
  });
}
