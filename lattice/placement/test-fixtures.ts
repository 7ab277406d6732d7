/**
 * Builders for the placement tests: hosts, apps, and a loop that runs plan → applyPlan until the
 * plan has nothing left to do, checking an invariant after every round.
 */
import { expect } from 'vitest';
import type { AppActorSpec, AppProviderSpec, AppRevision, Spread } from '../wire/apps.ts';
import { applyPlan, plan } from './index.ts';
import type { ApplyOptions, PlacementActorGroup, PlacementHost, PlacementPlan } from './index.ts';

export const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

export function host(id: string, labels: Record<string, string> = {}, actors: PlacementActorGroup[] = [], providers: PlacementHost['providers'] = []): PlacementHost {
  return { id, name: `name-${id}`, labels, actors, providers };
}

export function spread(name: string, requirements: Record<string, string> = {}, weight = 1): Spread {
  return { name, requirements, weight };
}

export function actor(name: string, replicas: number | 'all', options: Partial<AppActorSpec> = {}): AppActorSpec {
  return { name, version: '1.0.0', digest: digest(1), replicas, spread: [spread('any')], policy: { maxMemoryPages: 16 }, links: [], routes: [], ...options };
}

export function app(name: string, actors: AppActorSpec[], options: { revision?: number; providers?: AppProviderSpec[]; deleting?: boolean } = {}): AppRevision {
  return {
    name,
    revision: options.revision ?? 1,
    specHash: `hash-${name}-${options.revision ?? 1}`,
    spec: { name, actors, providers: options.providers ?? [] },
    createdAt: '2026-01-01T00:00:00.000Z',
    ...(options.deleting ? { deleting: true } : {}),
  };
}

/** Instances of actor (optionally version/digest/app) per host id, hosts with none left out. */
export function counts(hosts: readonly PlacementHost[], name: string, filter: { version?: string; digest?: string; app?: string } = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of hosts) {
    for (const g of h.actors) {
      if (g.name !== name) continue;
      if (filter.version && g.version !== filter.version) continue;
      if (filter.digest && g.digest !== filter.digest) continue;
      if (filter.app && g.owner?.app !== filter.app) continue;
      out[h.id] = (out[h.id] ?? 0) + g.instances;
    }
  }
  return out;
}

export const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

/** Every action of a plan touches only groups of the app it names, never a hand-started one. */
export function expectOwnActionsOnly(hosts: readonly PlacementHost[], p: PlacementPlan, apps: readonly AppRevision[]): void {
  const names = new Set(apps.map((a) => a.name));
  for (const a of p.actions) {
    expect(names.has(a.owner.app)).toBe(true);
    const h = hosts.find((x) => x.id === a.hostId)!;
    const g = h.actors.find((x) => x.name === a.actor && x.version === a.version);
    if (a.kind === 'start') expect(g).toBeUndefined();
    else expect(g?.owner?.app).toBe(a.owner.app);
  }
}

export interface Converged {
  hosts: PlacementHost[];
  rounds: number;
  last: PlacementPlan;
}

/**
 * plan → apply until a plan has no actions (a fixed point), at most `maxRounds` rounds; then
 * plan once more and check it is still empty. `check` runs on every intermediate state.
 */
export function converge(
  apps: readonly AppRevision[],
  start: readonly PlacementHost[],
  options: { heldOut?: string[]; maxRounds?: number; check?: (hosts: PlacementHost[], p: PlacementPlan, round: number) => void; apply?: ApplyOptions } = {},
): Converged {
  let hosts = [...start];
  const maxRounds = options.maxRounds ?? 20;
  for (let round = 0; round <= maxRounds; round++) {
    const p = plan({ apps, hosts, heldOut: options.heldOut });
    expectOwnActionsOnly(hosts, p, apps);
    options.check?.(hosts, p, round);
    if (p.actions.length === 0 && p.providers.length === 0) {
      const again = plan({ apps, hosts, heldOut: options.heldOut });
      expect(again.actions).toEqual([]);
      expect(again.providers).toEqual([]);
      return { hosts, rounds: round, last: p };
    }
    hosts = applyPlan(hosts, p, options.apply);
  }
  throw new Error(`no fixed point after ${maxRounds} rounds`);
}

/** A small deterministic random generator (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
