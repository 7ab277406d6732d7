/**
 * Bounded JetStream streams that keep what the lattice said recently (log lines, events), and
 * one reader for them: read back from a point in time, then optionally follow. Retention is
 * bounded by age and size (oldest dropped first), so a busy lattice never fills the disk.
 */
import { DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, nanos, type NatsConnection } from 'nats';
import { TrellisError, fromNatsError } from '../errors/index.ts';

/**
 * How much a stream keeps: by age, and by bytes as a count of messages of a bounded size.
 * Not max_bytes: JetStream reserves a stream's max_bytes against the server's (or account's)
 * storage limit up front, so two streams per lattice would take storage that KV buckets and
 * artifacts of every lattice on the server need.
 */
export interface Retention {
  maxAgeMs: number;
  maxMessages: number;
  /** Larger messages are not kept (they were still delivered live). */
  maxMessageBytes: number;
}

/**
 * Create the stream when it does not exist yet. An existing one is left as it is: an operator
 * may have tuned its limits (`nats stream edit`). Throws when JetStream is unavailable.
 */
export async function ensureStream(nc: NatsConnection, name: string, subjects: string[], retention: Retention): Promise<void> {
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.streams.info(name);
    return;
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message ?? '')) throw err;
  }
  try {
    await jsm.streams.add({
      name,
      subjects,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(retention.maxAgeMs),
      max_msgs: retention.maxMessages,
      max_msg_size: retention.maxMessageBytes,
      num_replicas: 1,
    });
  } catch (err) {
    // Another participant created it a moment before.
    if (!/already in use/i.test((err as Error).message ?? '')) throw err;
  }
}

/** One message read back or followed. */
export interface StreamMessage {
  subject: string;
  data: Uint8Array;
}

/** What to read. */
export interface ReadOptions {
  stream: string;
  /** Subject filter (wildcards allowed) inside the stream. */
  filter: string;
  /** Read the kept messages since this epoch ms (undefined: only new ones, with `follow`). */
  sinceMs?: number;
  /** Keep going with new messages after the kept ones. */
  follow: boolean;
  /** Stop early (the caller is done). */
  signal?: AbortSignal;
}

/**
 * Kept messages since `sinceMs` (an ordered consumer: no gap and no duplicate between the kept
 * and the new ones), then new ones while `follow`. Without `sinceMs`, a plain subscription on
 * `filter` follows new messages (it works without JetStream).
 */
export async function* readStream(nc: NatsConnection, options: ReadOptions): AsyncGenerator<StreamMessage> {
  const { signal } = options;
  if (options.sinceMs === undefined) {
    if (!options.follow) return;
    const sub = nc.subscribe(options.filter);
    const stop = () => sub.unsubscribe();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const m of sub) yield { subject: m.subject, data: m.data };
    } finally {
      signal?.removeEventListener('abort', stop);
      sub.unsubscribe();
    }
    return;
  }
  let consumer;
  let lastSeq = 0;
  try {
    const jsm = await nc.jetstreamManager();
    const state = (await jsm.streams.info(options.stream)).state;
    lastSeq = state.last_seq;
    if (state.messages === 0 && !options.follow) return;
    consumer = await nc.jetstream().consumers.get(options.stream, { filterSubjects: options.filter, deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(options.sinceMs).toISOString() });
  } catch (err) {
    const error = fromNatsError(err, `stream ${options.stream}`);
    if (/stream not found|no responders|jetstream not enabled/i.test(`${(err as Error).message} ${error.code}`)) {
      throw new TrellisError('TRELLIS_NOT_FOUND', `no stream ${options.stream} in this lattice yet (it needs JetStream; hosts create it when they start)`, { cause: err });
    }
    throw error;
  }
  if (!options.follow) {
    // Read what was kept when the command started, in batches; an empty batch means no more.
    while (!signal?.aborted) {
      const batch = await consumer.fetch({ max_messages: 256, expires: 1000 });
      let got = 0;
      let done = false;
      for await (const m of batch) {
        got += 1;
        yield { subject: m.subject, data: m.data };
        if (m.info.pending === 0 || m.seq >= lastSeq) done = true;
      }
      if (done || got === 0) break;
    }
    await consumer.delete().catch(() => {});
    return;
  }
  const messages = await consumer.consume();
  const stop = () => void messages.close();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for await (const m of messages) yield { subject: m.subject, data: m.data };
  } finally {
    signal?.removeEventListener('abort', stop);
    await messages.close();
  }
}
