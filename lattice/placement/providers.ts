/**
 * Planning an app's provider references: which hosts the app holds a reference to each provider
 * kind on. A host runs a provider kind at most once, so a provider's replicas are hosts.
 */
import type { AppRevision } from '../wire/apps.ts';
import { matchingHosts, type Context, type Slot } from './actors.ts';
import { describeRequirements, largestRemainder, matches } from './shares.ts';
import type { ProviderAction, ProviderPlacement, SpreadPlacement } from './types.ts';

export type Health = 'ok' | 'starting' | 'failed' | undefined;

/** Every app's provider references now: app → provider → host index → health. */
export function allProviderRefs(slots: readonly Slot[]): Map<string, Map<string, Map<number, Health>>> {
  const all = new Map<string, Map<string, Map<number, Health>>>();
  for (const slot of slots) {
    for (const p of slot.host.providers) {
      for (const app of p.owners ?? []) {
        let refs = all.get(app);
        if (!refs) all.set(app, (refs = new Map()));
        let hosts = refs.get(p.name);
        if (!hosts) refs.set(p.name, (hosts = new Map()));
        hosts.set(slot.index, p.health);
      }
    }
  }
  return all;
}

const healthy = (h: Health) => h === undefined || h === 'ok';

export function planProviders(ctx: Context, app: AppRevision, deleting: boolean): { actions: ProviderAction[]; placements: ProviderPlacement[] } {
  const { slots } = ctx;
  const refs = ctx.refs.get(app.name) ?? new Map<string, Map<number, Health>>();
  const specs = deleting ? [] : app.spec.providers;
  const actions: ProviderAction[] = [];
  const placements: ProviderPlacement[] = [];
  const wanted = new Set(specs.map((p) => p.kind));
  for (const [kind, hosts] of [...refs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (wanted.has(kind)) continue;
    for (const h of [...hosts.keys()].sort((a, b) => a - b)) actions.push({ kind: 'drop', hostId: slots[h]!.host.id, provider: kind, app: app.name, reason: 'remove' });
  }
  for (const spec of specs) {
    const mine = refs.get(spec.kind) ?? new Map<number, Health>();
    const target = new Set<number>();
    const spreads: SpreadPlacement[] = spec.spread.map((s) => ({ name: s.name, desired: 0, placed: 0, running: 0 }));
    const heldOut = spec.spread.map(() => 0);
    if (spec.replicas === 'all') {
      for (const slot of slots) {
        const s = spec.spread.findIndex((sp) => matches(slot.host.labels, sp.requirements));
        if (s < 0) continue;
        if (slot.heldOut && !mine.has(slot.index)) {
          heldOut[s]!++;
          continue;
        }
        target.add(slot.index);
        spreads[s]!.desired++;
        spreads[s]!.placed++;
        if (mine.has(slot.index) && healthy(mine.get(slot.index))) spreads[s]!.running++;
      }
    } else {
      const shares = largestRemainder(spec.replicas, spec.spread.map((s) => s.weight));
      const order = spec.spread.map((s, i) => ({ i, m: matchingHosts(ctx, s.requirements).length })).sort((a, b) => a.m - b.m || a.i - b.i);
      for (const { i } of order) {
        const want = shares[i]!;
        const req = spec.spread[i]!.requirements;
        spreads[i]!.desired = want;
        // Keep the references that fit: not held out and healthy first.
        const kept = [...mine.keys()]
          .filter((h) => !target.has(h) && matches(slots[h]!.host.labels, req))
          .sort((a, b) => Number(slots[a]!.heldOut) - Number(slots[b]!.heldOut) || Number(healthy(mine.get(b))) - Number(healthy(mine.get(a))) || a - b)
          .slice(0, want);
        for (const h of kept) {
          target.add(h);
          if (healthy(mine.get(h))) spreads[i]!.running++;
        }
        spreads[i]!.placed = kept.length;
        const need = want - kept.length;
        if (need <= 0) continue;
        // Then hosts that run the provider already (a reference costs nothing there), then the
        // ones with the fewest providers and instances.
        const runs = (h: number) => slots[h]!.host.providers.some((p) => p.name === spec.kind);
        const eligible = matchingHosts(ctx, req).filter((h) => {
          if (slots[h]!.heldOut) heldOut[i]!++;
          return !slots[h]!.heldOut && !target.has(h);
        });
        eligible.sort(
          (a, b) =>
            Number(runs(b)) - Number(runs(a)) ||
            slots[a]!.host.providers.length - slots[b]!.host.providers.length ||
            slots[a]!.load - slots[b]!.load ||
            a - b,
        );
        for (const h of eligible.slice(0, need)) target.add(h);
        spreads[i]!.placed += Math.min(need, eligible.length);
        if (spreads[i]!.placed < want) {
          const matching = matchingHosts(ctx, req).length;
          const held = heldOut[i]! > 0 ? `, ${heldOut[i]} held out after flapping` : '';
          spreads[i]!.reason =
            matching === 0
              ? `no host matches ${describeRequirements(req)}`
              : `${spreads[i]!.placed} of ${want} placed: a host runs a provider once, and ${matching} host${matching === 1 ? '' : 's'} match ${describeRequirements(req)}${held}`;
        }
      }
    }
    if (spec.replicas === 'all' && target.size === 0) {
      for (const [i, s] of spreads.entries()) {
        const req = spec.spread[i]!.requirements;
        s.reason = matchingHosts(ctx, req).length === 0 ? `no host matches ${describeRequirements(req)}` : `no eligible host: ${heldOut[i]} matching held out after flapping`;
      }
    }
    // A healthy reference is dropped only while as many healthy ones as wanted remain.
    let healthyNow = 0;
    for (const h of mine.values()) if (healthy(h)) healthyNow++;
    let budget = Math.max(0, healthyNow - target.size);
    const drops = [...mine.keys()].filter((h) => !target.has(h)).sort((a, b) => a - b);
    for (const h of drops) {
      if (healthy(mine.get(h))) {
        if (budget === 0) {
          target.add(h);
          continue;
        }
        budget--;
      }
      actions.push({ kind: 'drop', hostId: slots[h]!.host.id, provider: spec.kind, app: app.name, reason: 'scale-down' });
    }
    for (const h of [...target].sort((a, b) => a - b)) {
      if (!mine.has(h)) actions.push({ kind: 'take', hostId: slots[h]!.host.id, provider: spec.kind, app: app.name, reason: 'place' });
    }
    const desired = spreads.reduce((a, s) => a + s.desired, 0);
    const placed = spreads.reduce((a, s) => a + s.placed, 0);
    let running = 0;
    for (const h of mine.values()) if (healthy(h)) running++;
    placements.push({ kind: spec.kind, desired, placed, running, spreads });
  }
  return { actions, placements };
}
