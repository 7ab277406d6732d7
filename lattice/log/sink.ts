/**
 * Publishing log lines to the lattice: a pino destination that sends each JSON line on the
 * participant's log subject (per actor, see lattice/subjects), where a bounded JetStream stream
 * keeps them for `trellis logs --since`. Lines written before the connection exists, or after it
 * closed, go to stdout only: logging never waits for, or fails with, NATS.
 */
import type { NatsConnection } from 'nats';
import type { Subjects } from '../subjects/index.ts';
import { ensureStream, type Retention } from '../streams/index.ts';

/** Default retention of the log stream: a day, at most 200,000 lines of at most 16 KiB (typically 50-100 MiB). */
export const LOG_RETENTION: Retention = { maxAgeMs: 24 * 3_600_000, maxMessages: 200_000, maxMessageBytes: 16 * 1024 };

// The actor binding of a line, as pino writes it (child bindings come before the line's own
// fields, so the first match is the actor's). A token: anything else cannot be a subject part.
const ACTOR = /"actor":"([^".*>\s\\]{1,128})"/;
const encoder = new TextEncoder();

/** A pino destination stream that publishes each line to the lattice once attached. */
export class LatticeLogSink {
  #nc?: NatsConnection;
  #subjects?: Subjects;
  #participant = '';
  /** Subjects per actor, built once (building one validates two tokens). */
  readonly #bySubject = new Map<string, string>();

  /** Start publishing on `nc` as `participant` (a host id). */
  attach(nc: NatsConnection, subjects: Subjects, participant: string): void {
    this.#nc = nc;
    this.#subjects = subjects;
    this.#participant = participant;
    this.#bySubject.clear();
  }

  /** Stop publishing (before the connection drains, so the last lines do not race it). */
  detach(): void {
    this.#nc = undefined;
  }

  /** pino calls this with one serialized line (newline included). */
  write(line: string): void {
    const nc = this.#nc;
    if (!nc || nc.isClosed() || nc.isDraining()) return;
    const actor = ACTOR.exec(line)?.[1];
    const key = actor ?? '';
    let subject = this.#bySubject.get(key);
    if (subject === undefined) {
      subject = this.#subjects!.log(this.#participant, actor);
      if (this.#bySubject.size < 4096) this.#bySubject.set(key, subject);
    }
    try {
      nc.publish(subject, encoder.encode(line.endsWith('\n') ? line.slice(0, -1) : line));
    } catch {
      // A line too large for max_payload stays on stdout only.
    }
  }
}

/** Create the lattice's log stream if missing (hosts do at start; needs JetStream). */
export function ensureLogStream(nc: NatsConnection, subjects: Subjects, retention: Retention = LOG_RETENTION): Promise<void> {
  return ensureStream(nc, subjects.streams.logs, [subjects.logs()], retention);
}
