/**
 * The application manifest (`trellis apply -f app.yaml`): YAML or JSON text checked, in one pure
 * pass, into a Manifest, with every problem found reported by path and line. Files it names
 * (components, policy files) are resolved from the manifest's folder here and read by
 * loadManifest (load.ts), which is the only part that touches the disk.
 */
import { isAbsolute, resolve } from 'node:path';
import { httpRouteKind } from '../http-routes/index.ts';
import { ProviderKinds, providerKind } from '../links/index.ts';
import { compilePolicy, type ActorPolicy } from '../policy/index.ts';
import { checkActorBucket } from '../state/index.ts';
import { versionToken } from '../subjects/index.ts';
import type { AppActorSpec, AppProviderSpec, Replicas, Spread } from '../wire/apps.ts';
import { checkCanary, type CanarySpec } from './canary.ts';
import { describe, fields, int, list, nameProblem, str, stringMap, thrown } from './fields.ts';
import { parseText, type Path, type Problems } from './problems.ts';

export const API_VERSION = 'trellis.dev/v1';
export const KIND = 'Application';

/** Most replicas one actor may ask for across the lattice. */
export const MAX_REPLICAS = 1_000_000;

/** Where a component comes from: a file (pushed on apply) or a digest already stored. */
export type ActorSource = { file: string } | { digest: string };

/** A manifest actor: an AppActorSpec before its source is pushed and its policy file read. */
export interface ManifestActor extends Omit<AppActorSpec, 'digest' | 'policy' | 'canary'> {
  source: ActorSource;
  /** The compiled policy: inline (or the default), or read from `policyFile` by loadManifest. */
  policy?: ActorPolicy;
  /** An absolute path, when the manifest names a policy file. */
  policyFile?: string;
  canary?: CanarySpec;
}

/** A checked manifest. */
export interface Manifest {
  name: string;
  actors: ManifestActor[];
  providers: AppProviderSpec[];
}

/** A file the manifest names, for loadManifest to read (and to report on, at `path`). */
export interface FileReference {
  path: Path;
  kind: 'source' | 'policy';
  file: string;
}

/** What one pass over the text gives: the manifest when there is no problem, and the problems. */
export interface ParsedManifest {
  manifest: Manifest | undefined;
  problems: Problems;
  files: FileReference[];
}

/** The spread every host matches, for an actor or provider without one. */
export const DEFAULT_SPREAD: Readonly<Spread> = Object.freeze({ name: 'default', requirements: {}, weight: 1 });

const ROOT_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'];
const ACTOR_FIELDS = ['name', 'source', 'version', 'replicas', 'spread', 'policy', 'links', 'routes', 'canary'];
const PROVIDER_FIELDS = ['kind', 'replicas', 'spread'];
const SPREAD_FIELDS = ['name', 'requirements', 'weight'];

/** Check manifest text; relative paths in it resolve from `dir` (the manifest's folder). */
export function parseManifest(text: string, dir: string): ParsedManifest {
  const { value, problems: p } = parseText(text);
  const files: FileReference[] = [];
  if (value === undefined) return { manifest: undefined, problems: p, files };
  const root = fields(p, [], value, ROOT_FIELDS);
  if (!root) return { manifest: undefined, problems: p, files };
  if (root.apiVersion !== API_VERSION) p.add(['apiVersion'], root.apiVersion === undefined ? `is required (${API_VERSION})` : `must be ${API_VERSION}, got ${describe(root.apiVersion)}`);
  if (root.kind !== KIND) p.add(['kind'], root.kind === undefined ? `is required (${KIND})` : `must be ${KIND}, got ${describe(root.kind)}`);
  let name: string | undefined;
  if (root.metadata === undefined) p.add(['metadata'], 'is required (metadata.name names the app)');
  else {
    const metadata = fields(p, ['metadata'], root.metadata, ['name']);
    if (metadata) name = str(p, ['metadata', 'name'], metadata.name, { required: true, test: nameProblem });
  }
  const actors: ManifestActor[] = [];
  const providers: AppProviderSpec[] = [];
  const spec = root.spec === undefined ? (p.add(['spec'], 'is required'), undefined) : fields(p, ['spec'], root.spec, ['actors', 'providers']);
  if (spec) {
    const actorList = list(p, ['spec', 'actors'], spec.actors, { max: 1000 });
    const providerList = list(p, ['spec', 'providers'], spec.providers, { max: 100 });
    if (actorList?.length === 0 && (providerList ?? []).length === 0) p.add(['spec', 'actors'], 'must hold at least one actor (or spec.providers a provider)');
    if (spec.actors === undefined && spec.providers === undefined) p.add(['spec', 'actors'], 'is required');
    const routes = new Map<string, string>();
    // Names are compared as written, so a twin is found even when the first one has problems.
    const seen = new Set<unknown>();
    const twice = (path: Path, what: string, value: unknown) => {
      if (typeof value === 'string' && seen.has(`${what}:${value}`)) p.add(path, `${what} ${value} is listed twice`);
      seen.add(`${what}:${value}`);
    };
    (actorList ?? []).forEach((a, i) => {
      const actor = checkActor(p, ['spec', 'actors', i], a, dir, files, routes);
      twice(['spec', 'actors', i, 'name'], 'actor', (a as { name?: unknown } | null)?.name);
      if (actor) actors.push(actor);
    });
    (providerList ?? []).forEach((v, i) => {
      const provider = checkProvider(p, ['spec', 'providers', i], v);
      twice(['spec', 'providers', i, 'kind'], 'provider', (v as { kind?: unknown } | null)?.kind);
      if (provider) providers.push(provider);
    });
  }
  const manifest = p.list.length === 0 && name ? { name, actors, providers } : undefined;
  return { manifest, problems: p, files };
}

function checkReplicas(p: Problems, path: Path, value: unknown): Replicas | undefined {
  if (value === undefined) return 1;
  if (value === 'all') return 'all';
  return int(p, path, value, 1, MAX_REPLICAS, 'a positive integer or "all"');
}

function checkSpreads(p: Problems, path: Path, value: unknown): Spread[] | undefined {
  if (value === undefined || value === null) return [{ ...DEFAULT_SPREAD, requirements: {} }];
  const items = list(p, path, value, { min: 1, max: 100 });
  if (!items) return undefined;
  const out: Spread[] = [];
  let ok = true;
  items.forEach((item, i) => {
    const at = [...path, i];
    const o = fields(p, at, item, SPREAD_FIELDS);
    if (!o) return void (ok = false);
    const name = str(p, [...at, 'name'], o.name, { required: true, test: nameProblem });
    const requirements = stringMap(p, [...at, 'requirements'], o.requirements);
    const weight = o.weight === undefined ? 1 : int(p, [...at, 'weight'], o.weight, 1, 1_000_000, 'a positive integer');
    if (name && out.some((s) => s.name === name)) p.add([...at, 'name'], `spread ${name} is listed twice`);
    if (!name || !requirements || weight === undefined) ok = false;
    else out.push({ name, requirements, weight });
  });
  return ok ? out : undefined;
}

function checkActor(p: Problems, path: Path, value: unknown, dir: string, files: FileReference[], routes: Map<string, string>): ManifestActor | undefined {
  const before = p.list.length;
  const o = fields(p, path, value, ACTOR_FIELDS);
  if (!o) return undefined;
  const name = str(p, [...path, 'name'], o.name, { required: true, test: nameProblem });
  const version = o.version === undefined ? (p.add([...path, 'version'], 'is required (a semantic version, e.g. 1.2.0)'), undefined)
    : typeof o.version !== 'string' ? (p.add([...path, 'version'], `must be a semantic version string like 1.2.0, got ${describe(o.version)} (quote it)`), undefined)
    : str(p, [...path, 'version'], o.version, { test: (s) => thrown(() => versionToken(s)) });
  const sourceText = str(p, [...path, 'source'], o.source, { required: true, test: (s) => (s.trim() === '' ? 'must not be empty' : s.startsWith('sha256:') && !/^sha256:[0-9a-f]{64}$/.test(s) ? 'a digest must be sha256:<64 hex digits>' : undefined) });
  let source: ActorSource | undefined;
  if (sourceText !== undefined) {
    source = sourceText.startsWith('sha256:') ? { digest: sourceText } : { file: isAbsolute(sourceText) ? sourceText : resolve(dir, sourceText) };
    if ('file' in source) files.push({ path: [...path, 'source'], kind: 'source', file: source.file });
  }
  const replicas = checkReplicas(p, [...path, 'replicas'], o.replicas);
  const spread = checkSpreads(p, [...path, 'spread'], o.spread);
  let policy: ActorPolicy | undefined;
  let policyFile: string | undefined;
  if (typeof o.policy === 'string') {
    policyFile = isAbsolute(o.policy) ? o.policy : resolve(dir, o.policy);
    files.push({ path: [...path, 'policy'], kind: 'policy', file: policyFile });
  } else if (o.policy === undefined || o.policy === null || typeof o.policy === 'object') {
    try {
      policy = compilePolicy(o.policy ?? {}, dir);
    } catch (err) {
      reportPolicyProblem(p, [...path, 'policy'], (err as Error).message);
    }
  } else p.add([...path, 'policy'], `must be a policy file name or an inline policy map, got ${describe(o.policy)}`);
  const links = checkLinks(p, [...path, 'links'], o.links);
  // Routes are checked even when the name is not (its problem is reported already).
  const actorRoutes = checkRoutes(p, [...path, 'routes'], o.routes, name ?? `spec.actors[${path[2]}]`, routes);
  const canary = o.canary === undefined ? undefined : checkCanary(p, [...path, 'canary'], o.canary);
  if (p.list.length > before || !name || !version || !source || replicas === undefined || !spread || !links || !actorRoutes) return undefined;
  return { name, version, source, replicas, spread, ...(policy ? { policy } : {}), ...(policyFile ? { policyFile } : {}), links, routes: actorRoutes, ...(canary ? { canary } : {}) };
}

/**
 * compilePolicy stops at its first problem and names the field (`invalid policy option
 * allowedDirs[0].hostPath: ...`): report it at that field's own path and line.
 */
export function reportPolicyProblem(p: Problems, path: Path, message: string, line?: number): void {
  const match = /^invalid policy option ([^:]+): (.*)$/s.exec(message);
  if (!match || match[1] === 'policy') return p.add(path, match ? match[2]! : message, line === undefined ? {} : { line });
  const sub: (string | number)[] = [];
  for (const part of match[1]!.split('.')) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part)!;
    if (m[1]) sub.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) sub.push(Number(idx[1]));
  }
  const unknown = match[2] === 'unknown option';
  p.add([...path, ...sub], unknown ? 'unknown policy field' : match[2]!, line === undefined ? { key: unknown } : { line });
}

function checkLinks(p: Problems, path: Path, value: unknown): AppActorSpec['links'] | undefined {
  const items = list(p, path, value, { max: 32 });
  if (!items) return value === undefined || value === null ? [] : undefined;
  const out: AppActorSpec['links'] = [];
  let ok = true;
  items.forEach((item, i) => {
    const at = [...path, i];
    const o = fields(p, at, item, ['provider', 'config']);
    if (!o) return void (ok = false);
    const provider = str(p, [...at, 'provider'], o.provider, { required: true, test: (s) => thrown(() => providerKind(s)) });
    const config = stringMap(p, [...at, 'config'], o.config);
    const bucket = (o.config as { bucket?: unknown } | undefined)?.bucket;
    if (provider === 'keyvalue-nats' && typeof bucket === 'string') {
      const bad = thrown(() => checkActorBucket(bucket));
      if (bad) p.add([...at, 'config', 'bucket'], bad);
    }
    if (!provider || !config) return void (ok = false);
    const iface = ProviderKinds[provider as keyof typeof ProviderKinds].interface;
    const twin = out.find((l) => ProviderKinds[l.provider as keyof typeof ProviderKinds].interface === iface);
    if (twin) return void (p.add([...at, 'provider'], `an actor has one link per interface: ${twin.provider} already provides ${iface}`), (ok = false));
    out.push({ provider, config });
  });
  return ok ? out : undefined;
}

/** Routes, checked as the route store checks them; `seen` finds a prefix+host routed twice in the app. */
function checkRoutes(p: Problems, path: Path, value: unknown, actor: string, seen: Map<string, string>): AppActorSpec['routes'] | undefined {
  const items = list(p, path, value, { max: 64 });
  if (!items) return value === undefined || value === null ? [] : undefined;
  const out: AppActorSpec['routes'] = [];
  let ok = true;
  items.forEach((item, i) => {
    const at = [...path, i];
    const o = fields(p, at, item, ['prefix', 'host']);
    if (!o) return void (ok = false);
    const prefix = str(p, [...at, 'prefix'], o.prefix, { required: true });
    const host = str(p, [...at, 'host'], o.host);
    if (prefix === undefined || (o.host !== undefined && host === undefined)) return void (ok = false);
    // The route store's own checks (the actor is checked apart, as a name): the prefix alone
    // first, then with the host, so each problem lands on its own field.
    const check = (field: 'prefix' | 'host', doc: Record<string, string>) => {
      try {
        return httpRouteKind.decode({ actor: 'actor', createdAt: '', ...doc });
      } catch (err) {
        p.add([...at, field], (err as Error).message);
        return undefined;
      }
    };
    const bare = check('prefix', { prefix });
    const route = bare && host !== undefined ? check('host', { prefix, host }) : bare;
    if (!route) return void (ok = false);
    const key = `${route.host ?? '*'}|${route.prefix}`;
    const other = seen.get(key);
    if (other) return void (p.add([...at, 'prefix'], `${route.host ?? ''}${route.prefix} is already routed to ${other} in this app`), (ok = false));
    seen.set(key, actor);
    out.push(route.host ? { prefix: route.prefix, host: route.host } : { prefix: route.prefix });
  });
  return ok ? out : undefined;
}

function checkProvider(p: Problems, path: Path, value: unknown): AppProviderSpec | undefined {
  const before = p.list.length;
  const o = fields(p, path, value, PROVIDER_FIELDS);
  if (!o) return undefined;
  const kind = str(p, [...path, 'kind'], o.kind, { required: true, test: (s) => thrown(() => providerKind(s)) });
  const replicas = checkReplicas(p, [...path, 'replicas'], o.replicas);
  const spread = checkSpreads(p, [...path, 'spread'], o.spread);
  if (p.list.length > before || !kind || replicas === undefined || !spread) return undefined;
  return { kind, replicas, spread };
}
