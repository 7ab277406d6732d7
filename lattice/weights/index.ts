/**
 * Version weights: per actor, the share of traffic each version gets, kept as documents in a
 * JetStream KV bucket of the lattice so every caller sees a change within a second (follow).
 */
import type { NatsConnection } from 'nats';
import { openDocuments, type DocumentKind } from '../documents/index.ts';
import { TrellisError } from '../errors/index.ts';
import { token, versionToken, type Subjects } from '../subjects/index.ts';
import { isRecord } from '../wire/index.ts';

/** Version → percent; integers summing to 100. */
export type Weights = Record<string, number>;

/**
 * Where callers find a request's sticky key (an HTTP header or cookie name). With a key, the
 * version choice hashes it instead of taking the weighted round robin, so one user stays on one
 * version while the split holds (lattice/rpc/plan.ts).
 */
export interface Sticky {
  header?: string;
  /** Read when the header is not configured or the request lacks it. */
  cookie?: string;
  /** The canary version: it owns the lowest buckets (default: the newest weighted version). */
  canary?: string;
}

/** The stored weights document of one actor. */
export interface ActorWeights {
  actor: string;
  weights: Weights;
  sticky?: Sticky;
  updatedAt: string;
}

// RFC 9110 token characters: what a header or cookie name may hold.
const NAME_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;

/** Validate a sticky setting; header names are kept lower-case (Node gives them so). */
export function validateSticky(value: unknown): Sticky {
  if (!isRecord(value)) throw new TrellisError('TRELLIS_BAD_WEIGHTS', 'sticky must be { header?: string, cookie?: string, canary?: version }');
  const { header, cookie, canary } = value;
  if (header === undefined && cookie === undefined) throw new TrellisError('TRELLIS_BAD_WEIGHTS', 'sticky needs a header or a cookie name');
  for (const [what, name] of [['header', header], ['cookie', cookie]] as const) {
    if (name !== undefined && (typeof name !== 'string' || !NAME_TOKEN.test(name))) {
      throw new TrellisError('TRELLIS_BAD_WEIGHTS', `sticky ${what} name ${JSON.stringify(name)} is not a valid ${what} name`);
    }
  }
  if (canary !== undefined) {
    try {
      versionToken(canary as string);
    } catch {
      throw new TrellisError('TRELLIS_BAD_WEIGHTS', `sticky canary ${JSON.stringify(canary)} is not a semantic version`);
    }
  }
  const out: Sticky = {};
  if (header !== undefined) out.header = (header as string).toLowerCase();
  if (cookie !== undefined) out.cookie = cookie as string;
  if (canary !== undefined) out.canary = canary as string;
  return out;
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
  // A Map, not an object: a version like "constructor" or "__proto__" must neither read as
  // given twice nor reach an object's prototype (it then fails validation as no version).
  const weights = new Map<string, number>();
  for (const word of words) {
    const match = /^([^=]+)=(-?\d+(?:\.\d+)?)$/.exec(word);
    if (!match) throw new TrellisError('TRELLIS_BAD_WEIGHTS', `"${word}" is not version=percent`);
    if (weights.has(match[1]!)) throw new TrellisError('TRELLIS_BAD_WEIGHTS', `version ${match[1]} given twice`);
    weights.set(match[1]!, Number(match[2]));
  }
  return Object.fromEntries(weights);
}

/** Read, write and follow the weights of actors. */
export interface WeightStore {
  /** Replace an actor's weights; `options.sticky` sets where sticky keys come from (absent: none). */
  set(actor: string, weights: Weights, knownVersions?: Iterable<string>, options?: { sticky?: Sticky }): Promise<ActorWeights>;
  get(actor: string): Promise<ActorWeights | undefined>;
  /** Remove an actor's weights; false when it had none. */
  delete(actor: string): Promise<boolean>;
  /** Call `onChange` with every actor's weights now and on every change; returns a stop function. */
  follow(onChange: (actor: string, weights: ActorWeights | undefined) => void): Promise<() => void>;
}

/** Weights as a document kind: one per actor, keyed by its name. */
export const weightsKind: DocumentKind<ActorWeights> = {
  name: 'weights',
  // The bucket keeps its old name ("routes"): stored weights keep working across the rename.
  bucket: (subjects) => subjects.buckets.weights,
  key: (doc) => doc.actor,
  decode(value) {
    if (!isRecord(value) || typeof value.updatedAt !== 'string' || !isRecord(value.weights)) {
      throw new TrellisError('TRELLIS_BAD_WEIGHTS', 'weights document must hold actor, weights and updatedAt');
    }
    const doc: ActorWeights = { actor: token(value.actor as string, 'actor name'), weights: validateWeights(value.weights as Weights), updatedAt: value.updatedAt };
    if (value.sticky !== undefined) doc.sticky = validateSticky(value.sticky);
    return doc;
  },
};

/** Open the weight store of a lattice. */
export async function openWeights(nc: NatsConnection, subjects: Subjects): Promise<WeightStore> {
  const docs = await openDocuments(nc, subjects, weightsKind);
  return {
    async set(actor, weights, knownVersions, options) {
      token(actor, 'actor name');
      const doc: ActorWeights = { actor, weights: validateWeights(weights, knownVersions), updatedAt: new Date().toISOString() };
      if (options?.sticky !== undefined) doc.sticky = validateSticky(options.sticky);
      return (await docs.put(doc)).value;
    },
    async get(actor) {
      return (await docs.get(token(actor, 'actor name')))?.value;
    },
    delete: (actor) => docs.delete(token(actor, 'actor name')),
    follow: (onChange) => docs.follow(({ key, value }) => onChange(key, value)),
  };
}
