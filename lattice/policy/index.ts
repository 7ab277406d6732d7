/**
 * Actor sandbox policy: user input (JSON, YAML, object) is validated once into a complete
 * internal form. Everything is denied unless granted; units are in the field names. It lives in
 * lattice/ because the CLI compiles a policy file where the file is (its relative paths resolve
 * from the file's folder) and hosts compile what arrives in a start request.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { TrellisError } from '../errors/index.ts';
import { MAX_INSTANCES_PER_HOST } from '../wire/index.ts';

/** Normalise a guest path to an absolute path without `.`/`..` or trailing slash. */
export function normalizeGuestPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}

/** One directory grant: the guest sees `hostPath` at `guestPath`. */
export interface DirGrant {
  guestPath: string;
  hostPath: string;
  readonly: boolean;
}

/** The complete, validated sandbox and pool policy of one actor. */
export interface ActorPolicy {
  /** Cap on every linear memory of the actor, in 64 KiB pages. */
  maxMemoryPages: number;
  /** Wall time one invocation may run (including its blocking host calls). */
  executionTimeoutMs: number;
  /** Outbound hosts: `host`, `host:port` or `*.domain`; compared case-insensitively. */
  allowedHosts: string[];
  /** Environment variables the actor may read. */
  allowedEnvVars: string[];
  /** Explicit values for allowed variables; others come from the host process env at load. */
  env: Record<string, string>;
  allowedDirs: DirGrant[];
  /** Fresh instance for every request (components that cannot answer twice). */
  instancePerRequest: boolean;
  /** Instances started at load, before any request. */
  minInstances: number;
  /** Invocations running at once (one worker thread each); more wait in a bounded queue. */
  maxConcurrency: number;
}

/**
 * Defaults: 2048 pages (128 MiB) because componentize-js actors start near 20 MiB and grow with
 * their heap; 5 s per invocation; one pre-warmed instance; four concurrent invocations.
 */
export const DEFAULT_POLICY: Readonly<ActorPolicy> = Object.freeze({
  maxMemoryPages: 2048,
  executionTimeoutMs: 5000,
  allowedHosts: [],
  allowedEnvVars: [],
  env: {},
  allowedDirs: [],
  instancePerRequest: false,
  minInstances: 1,
  maxConcurrency: 4,
});

/** The hard ceiling of 32-bit linear memory. */
const MAX_PAGES = 65536;

function bad(field: string, what: string): never {
  throw new TrellisError('TRELLIS_BAD_OPTION', `invalid policy option ${field}: ${what}`);
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    bad(field, `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') bad(field, `expected a boolean, got ${JSON.stringify(v)}`);
  return v;
}

function strings(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) bad(field, 'expected a list of strings');
  return v.map((s, i) => {
    if (typeof s !== 'string' || s === '') bad(`${field}[${i}]`, 'expected a non-empty string');
    return s;
  });
}

function record(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(field, 'expected an object');
  return v as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, known: readonly string[], prefix: string): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) bad(`${prefix}${k}`, 'unknown option');
}

function dirs(v: unknown, baseDir: string): DirGrant[] {
  if (!Array.isArray(v)) bad('allowedDirs', 'expected a list of { guestPath, hostPath, readonly }');
  return v.map((d, i) => {
    const f = `allowedDirs[${i}]`;
    const o = record(d, f);
    onlyKeys(o, ['guestPath', 'hostPath', 'readonly'], `${f}.`);
    if (typeof o.guestPath !== 'string' || !o.guestPath.startsWith('/')) bad(`${f}.guestPath`, 'expected an absolute path');
    if (typeof o.hostPath !== 'string' || o.hostPath === '') bad(`${f}.hostPath`, 'expected a path');
    return {
      guestPath: normalizeGuestPath(o.guestPath),
      hostPath: isAbsolute(o.hostPath) ? o.hostPath : resolve(baseDir, o.hostPath),
      // A grant is read-only unless it says otherwise: deny by default.
      readonly: o.readonly === undefined ? true : bool(o.readonly, `${f}.readonly`),
    };
  });
}

const KEYS = Object.keys(DEFAULT_POLICY) as (keyof ActorPolicy)[];

/**
 * Validate user policy input into a complete ActorPolicy; throws TRELLIS_BAD_OPTION naming the
 * field. Relative `hostPath`s resolve against `baseDir` (the policy file's folder).
 */
export function compilePolicy(input: unknown = {}, baseDir = process.cwd()): ActorPolicy {
  const o = record(input ?? {}, 'policy');
  onlyKeys(o, KEYS, '');
  const d = DEFAULT_POLICY;
  const env = o.env === undefined ? {} : record(o.env, 'env');
  for (const [k, val] of Object.entries(env)) if (typeof val !== 'string') bad(`env.${k}`, 'expected a string');
  const policy: ActorPolicy = {
    maxMemoryPages: o.maxMemoryPages === undefined ? d.maxMemoryPages : int(o.maxMemoryPages, 'maxMemoryPages', 1, MAX_PAGES),
    executionTimeoutMs:
      o.executionTimeoutMs === undefined ? d.executionTimeoutMs : int(o.executionTimeoutMs, 'executionTimeoutMs', 1, 3_600_000),
    allowedHosts: o.allowedHosts === undefined ? [] : strings(o.allowedHosts, 'allowedHosts').map((h) => h.toLowerCase()),
    allowedEnvVars: o.allowedEnvVars === undefined ? [] : strings(o.allowedEnvVars, 'allowedEnvVars'),
    env: env as Record<string, string>,
    allowedDirs: o.allowedDirs === undefined ? [] : dirs(o.allowedDirs, baseDir),
    instancePerRequest: o.instancePerRequest === undefined ? d.instancePerRequest : bool(o.instancePerRequest, 'instancePerRequest'),
    minInstances: o.minInstances === undefined ? d.minInstances : int(o.minInstances, 'minInstances', 0, MAX_INSTANCES_PER_HOST),
    maxConcurrency: o.maxConcurrency === undefined ? d.maxConcurrency : int(o.maxConcurrency, 'maxConcurrency', 1, MAX_INSTANCES_PER_HOST),
  };
  for (const k of Object.keys(policy.env)) {
    if (!policy.allowedEnvVars.includes(k)) bad(`env.${k}`, 'not listed in allowedEnvVars');
  }
  if (policy.minInstances > policy.maxConcurrency) bad('minInstances', 'greater than maxConcurrency');
  return policy;
}

/** Read a policy from a JSON or YAML file and compile it. */
export async function loadPolicyFile(path: string): Promise<ActorPolicy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot read policy file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  let input: unknown;
  try {
    input = parseYaml(text); // YAML is a superset of JSON.
  } catch (err) {
    throw new TrellisError('TRELLIS_BAD_OPTION', `invalid policy file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return compilePolicy(input, resolve(path, '..'));
}
