/**
 * Liveness beats: every host publishes a tiny message every beat period (default 1 s) on its
 * own subject, so a host's death is known after a few missed beats, in seconds, without
 * sending the full inventory that often. The beat carries the host's inventory sequence: a
 * listener that holds an older inventory knows it missed a change and asks for the current one.
 */
import { TrellisError } from '../errors/index.ts';
import { decodeJson, encodeJson, isRecord } from './codec.ts';

/** The beat period of a host unless configured, in ms. */
export const DEFAULT_BEAT_MS = 1000;
/** A host is dead after this many beat periods without a beat. */
export const MISSED_BEATS_DEAD = 3;

/** Largest beat accepted, bytes. */
export const MAX_BEAT_BYTES = 1024;

/** One beat. */
export interface HostBeat {
  /** Host id. */
  id: string;
  /** The host's beat period: a listener counts missed beats on the host's own clock. */
  periodMs: number;
  /** The host's inventory sequence: it grows with every change of what the host runs. */
  seq: number;
}

/** Encode a beat (JSON: a few dozen bytes, readable with `nats sub`). */
export function encodeBeat(beat: HostBeat): Uint8Array {
  return encodeJson(beat);
}

/** Decode and check a beat; TRELLIS_BAD_REQUEST for anything else. */
export function decodeBeat(bytes: Uint8Array): HostBeat {
  // A beat is a few dozen bytes: anything much larger is not one, and is not parsed.
  if (bytes.length > MAX_BEAT_BYTES) throw new TrellisError('TRELLIS_BAD_REQUEST', `beat: ${bytes.length} bytes, a beat is at most ${MAX_BEAT_BYTES}`);
  const value = decodeJson<unknown>(bytes, 'beat');
  if (
    !isRecord(value) ||
    typeof value.id !== 'string' ||
    value.id.length === 0 ||
    value.id.length > 128 ||
    !Number.isSafeInteger(value.periodMs) ||
    (value.periodMs as number) <= 0 ||
    !Number.isSafeInteger(value.seq) ||
    (value.seq as number) < 0
  ) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', 'beat: expected { id, periodMs, seq }');
  }
  return { id: value.id, periodMs: value.periodMs as number, seq: value.seq as number };
}

/** How long after its last beat a host counts as dead, in ms. */
export function deadAfterMs(periodMs: number): number {
  return MISSED_BEATS_DEAD * periodMs;
}
