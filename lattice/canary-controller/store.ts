/**
 * Canary documents in the lattice's `canaries` bucket, and the one way anyone changes them: a
 * transition of K1's state machine written with compare-and-set at the revision it was computed
 * from.
 *
 * Why the CLI transitions the document itself instead of asking the leader: the document is the
 * only state there is, so a command and a controller tick serialize on its revision. Whoever
 * writes second gets TRELLIS_CONFLICT, reads the new state and applies its transition to that,
 * so every command sees the result of every earlier one:
 * - abort during a full promote: whichever lands second applies to the other's result; a
 *   pending full promotion is still active, so abort wins; after the promotion landed, abort
 *   finds nothing running and is refused.
 * - promote during a rollback: the rollback landed first, so promote is refused (the run is
 *   over), or promote landed first and the controller's rollback decision is re-applied to the
 *   new step (tick keeps rollbacks of the same generation).
 * - a new start while one runs: start() on the stored run makes a new generation; the old
 *   generation's decisions no longer apply.
 * - abort with nothing running: refused before anything is written; no weights, no effects.
 * - pause, leader failover, resume: the pause is in the document, which the next leader reads.
 * Commands work with no leader at all (between terms); the effects they queue are done by the
 * next leader, level-triggered. The CLI writes the weights the transition asks for at once, so
 * an abort reaches the callers within a second even then; the leader rewrites them from the
 * document if a later transition landed in between.
 */
import type { NatsConnection } from 'nats';
import type { CanaryTransition } from '../canary/index.ts';
import { checkCanaryState } from '../canary/index.ts';
import { openDocuments, type DocumentKind, type DocumentStore, type Stored } from '../documents/index.ts';
import { TrellisError } from '../errors/index.ts';
import { token, type Subjects } from '../subjects/index.ts';
import { openWeights, validateSticky, weightsKind, type WeightStore } from '../weights/index.ts';
import { encodeEvent, makeEvent, isRecord, type CanaryState } from '../wire/index.ts';
import type { WeightsIntent } from '../canary/index.ts';
import { checkRecordExtras, mayReplaceWeights, nextRecord, withWindowClock, type CanaryRecord, type StampedWeights, type WeightsStamp } from './record.ts';

/** Canary documents: one per actor, keyed by its name; a few revisions kept for inspection. */
export const canaryKind: DocumentKind<CanaryRecord> = {
  name: 'canary',
  bucket: (subjects) => subjects.buckets.canaries,
  history: 5,
  key: (doc) => doc.actor,
  decode(value) {
    const state = checkCanaryState(value);
    checkRecordExtras(value as Record<string, unknown>);
    return state as CanaryRecord;
  },
};

export function openCanaries(nc: NatsConnection, subjects: Subjects): Promise<DocumentStore<CanaryRecord>> {
  return openDocuments(nc, subjects, canaryKind);
}

/**
 * The weights bucket as canary writers see it: the same documents (every caller reads them with
 * weightsKind, which ignores the stamp), plus the canary document revision they were derived
 * from, so a slower writer's split never lands over a newer abort or rollback.
 */
const stampedWeightsKind: DocumentKind<StampedWeights> = {
  ...weightsKind,
  decode(value) {
    const doc: StampedWeights = weightsKind.decode(value);
    const c = isRecord(value) ? value.canary : undefined;
    if (isRecord(c) && Number.isSafeInteger(c.generation) && Number.isSafeInteger(c.revision)) doc.canary = { generation: c.generation as number, revision: c.revision as number };
    return doc;
  },
};

/** A transition to apply to the current state (undefined: no canary ever ran). */
export type Operation = (state: CanaryRecord | undefined, now: number) => { transition: CanaryTransition<CanaryState | undefined>; extra?: Partial<CanaryRecord> };

export interface Transitioned {
  record: CanaryRecord | undefined;
  transition: CanaryTransition<CanaryState | undefined>;
  revision?: number;
}

/** Who writes: for events (`by`) and the CloudEvents source. */
export interface Writer {
  nc: NatsConnection;
  subjects: Subjects;
  docs: DocumentStore<CanaryRecord>;
  weights: WeightStore;
  /** The same weights, with the stamp of the canary document they came from (writes go here). */
  stamped: DocumentStore<StampedWeights>;
  by: string;
  source: string;
  /** The leader's writer: its clock is the one windows are judged by (record.ts, withWindowClock). */
  leader?: boolean;
}

export async function openWriter(nc: NatsConnection, subjects: Subjects, by: string, source: string, options: { leader?: boolean } = {}): Promise<Writer> {
  const [docs, weights, stamped] = await Promise.all([openCanaries(nc, subjects), openWeights(nc, subjects), openDocuments(nc, subjects, stampedWeightsKind)]);
  return { nc, subjects, docs, weights, stamped, by, source, ...(options.leader ? { leader: true } : {}) };
}

/**
 * Apply `op` to the actor's document with compare-and-set, retrying on a lost race against the
 * new state; a refusal throws its stable code (TRELLIS_NOT_FOUND, TRELLIS_CONFLICT). On success
 * the transition's events are published and its weights written.
 */
export async function transition(w: Writer, actor: string, op: Operation, options: { current?: Stored<CanaryRecord> } = {}): Promise<Transitioned> {
  token(actor, 'actor name');
  // The first attempt may use the revision the caller just read (the leader's followed copy).
  let current = options.current;
  for (let attempt = 0; attempt < 20; attempt++) {
    if (attempt > 0 || !current) current = await w.docs.get(actor);
    const { transition: t, extra } = op(current?.value, Date.now());
    if (t.refused) throw new TrellisError(t.refused.code, t.refused.reason);
    if (!t.changed || !t.state) return { record: current?.value, transition: t, ...(current ? { revision: current.revision } : {}) };
    const record = withWindowClock(current?.value, nextRecord(current?.value, t as CanaryTransition<CanaryState>, extra), w.leader === true);
    let stored: Stored<CanaryRecord>;
    try {
      stored = await w.docs.put(record, { expectRevision: current?.revision ?? 0 });
    } catch (err) {
      if (err instanceof TrellisError && err.code === 'TRELLIS_CONFLICT') continue;
      throw err;
    }
    await publish(w, t, stored.revision);
    return { record: stored.value, transition: t, revision: stored.revision };
  }
  throw new TrellisError('TRELLIS_CONFLICT', `the canary of ${actor} kept changing; try again`);
}

/**
 * Weights, then events: a rollback's stable 100 % goes out as soon as the state holds it, and
 * whoever reacts to canary_rolled_back or canary_promoted finds the weights already moved.
 * (Events are still sent once, by the writer of the transition: one that dies between the
 * document and the events loses them; the history in the document keeps the record.)
 */
export async function publish(w: Writer, t: CanaryTransition<CanaryState | undefined>, revision: number): Promise<void> {
  if (t.weights && t.state) await writeWeights(w, t.state.actor, t.weights, { generation: t.state.generation, revision });
  for (const e of t.events) {
    if (!w.nc.isClosed()) w.nc.publish(w.subjects.event(e.kind), encodeEvent(makeEvent(e.kind, w.source, { ...e.data, by: w.by })));
  }
}

/**
 * Write the weights a canary document at `stamp.revision` calls for, with compare-and-set at
 * the weights revision just read; false when weights of a newer canary document are already
 * there (this writer's state is stale: the newer one's weights stand).
 */
export async function writeWeights(w: Writer, actor: string, intent: WeightsIntent, stamp: WeightsStamp): Promise<boolean> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const current = await w.stamped.get(actor);
    if (!mayReplaceWeights(current?.value, stamp)) return false;
    const doc: StampedWeights = { actor, weights: intent.weights, updatedAt: new Date().toISOString(), canary: stamp };
    if (intent.sticky) doc.sticky = validateSticky(intent.sticky);
    try {
      await w.stamped.put(doc, { expectRevision: current?.revision ?? 0 });
      return true;
    } catch (err) {
      if (err instanceof TrellisError && err.code === 'TRELLIS_CONFLICT') continue;
      throw err;
    }
  }
  throw new TrellisError('TRELLIS_CONFLICT', `the weights of ${actor} kept changing; try again`);
}
