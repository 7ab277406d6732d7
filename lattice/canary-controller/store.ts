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
import { openWeights, type WeightStore } from '../weights/index.ts';
import { encodeEvent, makeEvent, type CanaryState } from '../wire/index.ts';
import { checkRecordExtras, nextRecord, type CanaryRecord } from './record.ts';

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
  by: string;
  source: string;
}

export async function openWriter(nc: NatsConnection, subjects: Subjects, by: string, source: string): Promise<Writer> {
  const [docs, weights] = await Promise.all([openCanaries(nc, subjects), openWeights(nc, subjects)]);
  return { nc, subjects, docs, weights, by, source };
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
    const record = nextRecord(current?.value, t as CanaryTransition<CanaryState>, extra);
    let stored: Stored<CanaryRecord>;
    try {
      stored = await w.docs.put(record, { expectRevision: current?.revision ?? 0 });
    } catch (err) {
      if (err instanceof TrellisError && err.code === 'TRELLIS_CONFLICT') continue;
      throw err;
    }
    await publish(w, t);
    return { record: stored.value, transition: t, revision: stored.revision };
  }
  throw new TrellisError('TRELLIS_CONFLICT', `the canary of ${actor} kept changing; try again`);
}

/** Events, then weights: a rollback's stable 100 % goes out as soon as the state holds it. */
export async function publish(w: Writer, t: CanaryTransition<CanaryState | undefined>): Promise<void> {
  for (const e of t.events) {
    if (!w.nc.isClosed()) w.nc.publish(w.subjects.event(e.kind), encodeEvent(makeEvent(e.kind, w.source, { ...e.data, by: w.by })));
  }
  if (t.weights && t.state) await w.weights.set(t.state.actor, t.weights.weights, undefined, t.weights.sticky ? { sticky: t.weights.sticky } : {});
}
