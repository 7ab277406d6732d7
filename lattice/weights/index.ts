/**
 * Weighted version routes: per actor, the share of traffic each version gets, kept in a
 * JetStream KV bucket of the lattice so every caller sees a change within a second (watch).
 */
import type { KV, NatsConnection } from 'nats';
import { TrellisError } from '../errors/index.ts';
import { followKv, openKv } from '../state/index.ts';
import { token, versionToken, type Subjects } from '../subjects/index.ts';
import { decodeJson, encodeJson, isRecord } from '../wire/index.ts';

/** Version → percent; integers summing to 100. */
export type Weights = Record<string, number>;

/** The stored route document of one actor. */
export interface Route {
  actor: string;
  weights: Weights;
  updatedAt: string;
}

/** Validate weights; throws TRELLIS_BAD_WEIGHTS saying what is wrong. */
export function validateWeights(weights: Weights, knownVersions?: Iterable<string>): Weights {
  const entries = Object.entries(weights);
  if (entries.length === 0) throw new TrellisError('TRELLIS_BAD_WEIGHTS', 'no weights given; use version=percent, e.g. 1.0.0=90 1.1.0=10');
  const known = knownVersions ? new Set(knownVersions) : undefined;
  let sum = 0;
  for (const [version, weight] of entries) {
    try {
      versionToken(version);
    } catch {
      throw new TrellisError('TRELLIS_BAD_WEIGHTS', `"${version}" is not a semantic version`);
    }
    if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
      throw new TrellisError('TRELLIS_BAD_WEIGHTS', `weight of ${version} must be an integer from 0 to 100, got ${weight}`);
    }
    if (known && !known.has(version)) {
      throw new TrellisError('TRELLIS_BAD_WEIGHTS', `version ${version} is not running anywhere in the lattice (known: ${[...known].join(', ') || 'none'})`);
    }
    sum += weight;
  }
  if (sum !== 100) throw new TrellisError('TRELLIS_BAD_WEIGHTS', `weights sum to ${sum}, they must sum to 100`);
  return weights;
}

/** Parse CLI words `1.0.0=90 1.1.0=10` into weights (validated later). */
export function parseWeights(words: string[]): Weights {
  const weights: Weights = {};
  for (const word of words) {
    const match = /^([^=]+)=(-?\d+(?:\.\d+)?)$/.exec(word);
    if (!match) throw new TrellisError('TRELLIS_BAD_WEIGHTS', `"${word}" is not version=percent`);
    if (match[1]! in weights) throw new TrellisError('TRELLIS_BAD_WEIGHTS', `version ${match[1]} given twice`);
    weights[match[1]!] = Number(match[2]);
  }
  return weights;
}

/** Read and write routes. */
export interface RouteStore {
  set(actor: string, weights: Weights, knownVersions?: Iterable<string>): Promise<Route>;
  get(actor: string): Promise<Route | undefined>;
  delete(actor: string): Promise<void>;
  /** Call `onChange` with every route now and on every change; returns a stop function. */
  watch(onChange: (actor: string, route: Route | undefined) => void): Promise<() => void>;
}

function decodeRoute(bytes: Uint8Array): Route | undefined {
  try {
    const value = decodeJson<unknown>(bytes, 'route');
    if (isRecord(value) && typeof value.actor === 'string' && isRecord(value.weights)) return value as unknown as Route;
  } catch {
    // A corrupt entry is ignored rather than breaking every caller; `route set` overwrites it.
  }
  return undefined;
}

/** Open the route store of a lattice. */
export async function openRoutes(nc: NatsConnection, subjects: Subjects): Promise<RouteStore> {
  const kv: KV = await openKv(nc, subjects.buckets.routes);
  return {
    async set(actor, weights, knownVersions) {
      token(actor, 'actor name');
      const route: Route = { actor, weights: validateWeights(weights, knownVersions), updatedAt: new Date().toISOString() };
      await kv.put(actor, encodeJson(route));
      return route;
    },
    async get(actor) {
      const entry = await kv.get(token(actor, 'actor name'));
      return entry && entry.operation === 'PUT' ? decodeRoute(entry.value) : undefined;
    },
    async delete(actor) {
      await kv.delete(token(actor, 'actor name'));
    },
    watch: (onChange) => followKv(kv, (actor, value) => onChange(actor, value && decodeRoute(value))),
  };
}
