/**
 * App specs as data: the spec a checked manifest becomes once its sources are digests, its
 * canonical hash (so an unchanged manifest makes no revision), and what changes between two
 * specs (what `trellis apply` prints). All pure.
 */
import { createHash } from 'node:crypto';
import type { AppActorSpec, AppProviderSpec, AppSpec, Replicas } from '../wire/apps.ts';
import type { Manifest } from './manifest.ts';

/** JSON with every object's keys sorted, so equal values give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** sha256 of a spec's canonical JSON, `sha256:<hex>`. */
export function specHash(spec: AppSpec): string {
  return `sha256:${createHash('sha256').update(canonicalJson(spec)).digest('hex')}`;
}

/** The spec of a checked manifest, given the digest of each actor (by name). */
export function toSpec(manifest: Manifest, digests: Record<string, string>): AppSpec {
  return {
    name: manifest.name,
    actors: manifest.actors.map((a): AppActorSpec => {
      const digest = 'digest' in a.source ? a.source.digest : digests[a.name];
      if (!digest) throw new Error(`no digest for actor ${a.name}`);
      return {
        name: a.name,
        version: a.version,
        digest,
        replicas: a.replicas,
        spread: a.spread,
        policy: { ...(a.policy ?? {}) },
        links: a.links,
        routes: a.routes,
        ...(a.canary ? { canary: { ...a.canary } } : {}),
      };
    }),
    providers: manifest.providers,
  };
}

/** One difference between two revisions of an app. */
export interface Change {
  change: 'add' | 'remove' | 'update';
  kind: 'actor' | 'route' | 'link' | 'provider';
  /** What it is about: `api`, `shop.example.com/api → api`, `api → keyvalue-nats`. */
  name: string;
  /** For updates: what changed (`version 1.1.0 → 1.2.0`). For adds: a summary. */
  details: string[];
}

const replicasText = (r: Replicas) => (r === 'all' ? 'all hosts' : `${r} replica${r === 1 ? '' : 's'}`);
const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
const configText = (c: Record<string, string>) => Object.entries(c).map(([k, v]) => `${k}=${v}`).join(',') || 'no config';

function actorChanges(from: AppActorSpec, to: AppActorSpec): string[] {
  const out: string[] = [];
  if (from.version !== to.version) out.push(`version ${from.version} → ${to.version}`);
  if (from.digest !== to.digest) out.push(`source ${from.digest.slice(7, 19)} → ${to.digest.slice(7, 19)}`);
  if (from.replicas !== to.replicas) out.push(`replicas ${from.replicas} → ${to.replicas}`);
  if (!same(from.spread, to.spread)) out.push(`spread ${from.spread.map((s) => `${s.name}:${s.weight}`).join(',')} → ${to.spread.map((s) => `${s.name}:${s.weight}`).join(',')}`);
  if (!same(from.policy, to.policy)) out.push('policy changed');
  if (!same(from.canary, to.canary)) out.push(to.canary ? (from.canary ? 'canary settings changed' : 'canary added') : 'canary removed');
  return out;
}

function providerChanges(from: AppProviderSpec, to: AppProviderSpec): string[] {
  const out: string[] = [];
  if (from.replicas !== to.replicas) out.push(`replicas ${from.replicas} → ${to.replicas}`);
  if (!same(from.spread, to.spread)) out.push('spread changed');
  return out;
}

/** Keyed items on both sides: adds, removes and updates, in a stable order. */
function diffBy<T>(kind: Change['kind'], from: T[], to: T[], key: (t: T) => string, added: (t: T) => string[], changed: (a: T, b: T) => string[]): Change[] {
  const out: Change[] = [];
  const before = new Map(from.map((t) => [key(t), t]));
  const after = new Map(to.map((t) => [key(t), t]));
  for (const [name, t] of after) {
    const old = before.get(name);
    if (!old) out.push({ change: 'add', kind, name, details: added(t) });
    else {
      const details = changed(old, t);
      if (details.length > 0) out.push({ change: 'update', kind, name, details });
    }
  }
  for (const name of before.keys()) if (!after.has(name)) out.push({ change: 'remove', kind, name, details: [] });
  return out;
}

/** What changes from `from` (the current revision's spec, if any) to `to`. */
export function diffSpecs(from: AppSpec | undefined, to: AppSpec): Change[] {
  const prev = from ?? { name: to.name, actors: [], providers: [] };
  const routes = (s: AppSpec) => s.actors.flatMap((a) => a.routes.map((r) => ({ ...r, actor: a.name })));
  const links = (s: AppSpec) => s.actors.flatMap((a) => a.links.map((l) => ({ ...l, actor: a.name })));
  return [
    ...diffBy('actor', prev.actors, to.actors, (a) => a.name, (a) => [`${a.version}, ${replicasText(a.replicas)}`], actorChanges),
    ...diffBy('provider', prev.providers, to.providers, (p) => p.kind, (p) => [replicasText(p.replicas)], providerChanges),
    ...diffBy('link', links(prev), links(to), (l) => `${l.actor} → ${l.provider}`, (l) => [configText(l.config)], (a, b) => (same(a.config, b.config) ? [] : [`config ${configText(a.config)} → ${configText(b.config)}`])),
    // A route is its prefix and host; moving it to another actor of the app is an update.
    ...diffBy('route', routes(prev), routes(to), (r) => `${r.host ?? ''}${r.prefix}`, (r) => [`→ ${r.actor}`], (a, b) => (a.actor === b.actor ? [] : [`actor ${a.actor} → ${b.actor}`])),
  ];
}

/** A change as one line for people: `+ actor api (1.2.0, 4 replicas)`, `~ actor api: version 1.1.0 → 1.2.0`. */
export function changeLine(c: Change): string {
  const sign = c.change === 'add' ? '+' : c.change === 'remove' ? '-' : '~';
  const details = c.details.length === 0 ? '' : c.change === 'update' ? `: ${c.details.join(', ')}` : ` (${c.details.join('; ')})`;
  return `${sign} ${c.kind} ${c.name}${details}`;
}
