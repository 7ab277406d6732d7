/**
 * Request/reply for the invocation hot path: one wildcard inbox subscription per client, replies
 * matched by a counter token, time-outs checked by one sweeper. nats.js's nc.request does the
 * same over its own inbox but also captures three Error objects per call (async stack traces, its
 * timer, and a "cancelled" error built after every successful reply) and arms a timer per call:
 * about a third of the caller's CPU per invocation.
 *
 * At most once while the taker lives. A worker answers a call it takes at once with an empty
 * taken reply (before the actor runs, flushed to its socket synchronously), and the host keeps
 * sending progress replies while the call runs; each extends the attempt by PROGRESS_GRACE_MS.
 * So an attempt expires only if nobody took the call in time, or the taker went silent (died).
 * The one race left: a worker takes the call just before the attempt expires, and the caller's
 * timer fires before the taken reply is read here (a starved caller runs its timers before it
 * reads its socket). Two rules close it:
 *   1. A worker takes a call only while ATTEMPT_TAKE_MARGIN_MS of the attempt is left (else it
 *      drops it unanswered; the caller will send it again, which is safe: nobody ran it). Its
 *      taken reply leaves at least that long before the expiry.
 *   2. An attempt that expires is not failed at once: the caller first makes a flush round trip
 *      to the server (PING/PONG) and fails it only if no taken/progress reply came meanwhile.
 *      The server writes to this connection in the order it processes things, so every reply it
 *      routed here before it read our PING arrives, and is handled by deliver() (a synchronous
 *      subscription callback), before the PONG resolves the flush.
 * Together: a take that happened at least the margin before the expiry has its taken reply at the
 * server before our PING (which leaves after the expiry) unless that reply spent longer than the
 * margin between two processes on one lattice, and then the second line of defence holds
 * (capability writes are idempotent per invocation id and sequence).
 *
 * Silence is only evidence while this connection is up: during a disconnect the server drops
 * the replies meant for us (taken, progress, the answer itself), so no attempt expires then, a
 * confirming flush that fails or times out proves nothing (the attempt waits on instead of being
 * failed and sent again), and after a reconnect every pending attempt gets a fresh
 * PROGRESS_GRACE_MS to hear from its taker. The caller's deadline still bounds all of it.
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type NatsError, type Subscription } from 'nats';
import { TrellisError, fromNatsError } from '../errors/index.ts';
import { PROGRESS_GRACE_MS, RpcHeaders } from '../wire/index.ts';

interface PendingReply {
  resolve(msg: Msg): void;
  reject(err: TrellisError): void;
  expiresAt: number;
  /** Progress replies extend the wait up to here (the caller's deadline), never past it. */
  latestAt: number;
  target: string;
  /** Expired, waiting for the flush round trip that decides whether it really timed out. */
  confirming: boolean;
}

/** Give `pending` a fresh grace to hear from its taker, never past its deadline. */
function extend(pending: PendingReply, now: number): void {
  pending.expiresAt = Math.min(now + PROGRESS_GRACE_MS, pending.latestAt);
}

/** How often pending replies are checked for their time-out; time-outs fire at most this late. */
const SWEEP_INTERVAL_MS = 5;
/** Sweeps with nothing pending before the sweeper stops (it restarts with the next request). */
const IDLE_SWEEPS = 200;
/** Longest wait for the confirming flush (a connection that is down fails the attempt). */
const CONFIRM_TIMEOUT_MS = 1000;

/** Replies to requests sent on one connection, with per-attempt time-outs. */
export class ReplyMux {
  private readonly prefix: string;
  private readonly pending = new Map<string, PendingReply>();
  private readonly sub: Subscription;
  private next = 0;
  private sweeper?: ReturnType<typeof setInterval>;
  private idleSweeps = 0;
  private closedError?: TrellisError;
  /** Between a disconnect and the reconnect: replies meant for us are being dropped. */
  private disconnected = false;
  /**
   * Requests go out together once per event-loop turn. nats.js writes to its socket after each
   * callback that published, so calls started from separate callbacks (one per HTTP request in
   * a gateway) would cost a write system call each; sent from one callback, a turn's calls
   * share one write.
   */
  private outbox: { subject: string; body: Uint8Array; headers: MsgHdrs; tokenId: string }[] = [];
  private readonly sendOutbox = () => {
    const batch = this.outbox;
    this.outbox = [];
    for (const m of batch) {
      const pending = this.pending.get(m.tokenId);
      if (!pending) continue; // the client closed meanwhile
      try {
        this.nc.publish(m.subject, m.body, { reply: this.prefix + m.tokenId, headers: m.headers });
      } catch (err) {
        this.pending.delete(m.tokenId);
        pending.reject(fromNatsError(err, pending.target));
      }
    }
  };

  constructor(private readonly nc: NatsConnection) {
    // Follow the connection's inbox prefix (deployments restrict _INBOX.> by permissions).
    const inboxPrefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix || undefined;
    this.prefix = `${createInbox(inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => this.deliver(err, msg) });
    void nc.closed().then(() => this.close(new TrellisError('TRELLIS_NATS_UNAVAILABLE', 'NATS connection closed')));
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') this.disconnected = true;
        else if (status.type === 'reconnect') {
          this.disconnected = false;
          const now = performance.now();
          for (const pending of this.pending.values()) extend(pending, now);
        }
      }
    })();
  }

  /** Send and await the reply: `timeoutMs` without a word from the callee, `budgetMs` at most. */
  request(subject: string, body: Uint8Array, headers: MsgHdrs, timeoutMs: number, target: string, budgetMs = timeoutMs): Promise<Msg> {
    if (this.closedError) return Promise.reject(this.closedError);
    const tokenId = (this.next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      this.outbox.push({ subject, body, headers, tokenId });
      if (this.outbox.length === 1) setImmediate(this.sendOutbox);
      const now = performance.now();
      this.pending.set(tokenId, { resolve, reject, expiresAt: now + timeoutMs, latestAt: now + Math.max(timeoutMs, budgetMs), target, confirming: false });
      if (!this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
        // The NATS connection keeps the process alive while calls are pending.
        this.sweeper.unref();
      }
      this.idleSweeps = 0;
    });
  }

  private deliver(err: NatsError | null, msg: Msg): void {
    if (err) return; // a subscription-level error (permissions): pending calls time out
    const tokenId = msg.subject.slice(this.prefix.length);
    const pending = this.pending.get(tokenId);
    if (!pending) return; // late reply to a call that already timed out
    if (msg.data.length === 0) {
      const kind = emptyReplyKind(msg);
      // Taken replies carry the progress header too: the callee is alive and on it. Wait on,
      // never re-send work that is under way.
      if (kind === 'progress') {
        extend(pending, performance.now());
        return;
      }
      // The server answers 503 with an empty body when nobody subscribes to the subject.
      if (kind === 'no-responders') {
        this.pending.delete(tokenId);
        pending.reject(new TrellisError('TRELLIS_NO_RESPONDERS', `no responders for ${pending.target}`));
        return;
      }
    }
    this.pending.delete(tokenId);
    pending.resolve(msg);
  }

  private sweep(): void {
    if (this.pending.size === 0) {
      if (++this.idleSweeps >= IDLE_SWEEPS) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
      return;
    }
    const now = performance.now();
    let expired: [string, PendingReply][] | undefined;
    for (const [tokenId, pending] of this.pending) {
      if (pending.latestAt <= now) {
        // The caller's whole budget is spent: nothing will be sent again, no need to confirm.
        this.timeOut(tokenId, pending);
        continue;
      }
      if (pending.confirming || pending.expiresAt > now || this.disconnected) continue;
      pending.confirming = true;
      (expired ??= []).push([tokenId, pending]);
    }
    if (expired) void this.confirm(expired);
  }

  /** Fail the expired attempts that still have had no word after a flush round trip (see top). */
  private async confirm(expired: [string, PendingReply][]): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let confirmed = false;
    // Never past the earliest deadline among them (the sweep fails those at their deadline).
    const waitMs = Math.max(0, Math.min(CONFIRM_TIMEOUT_MS, ...expired.map(([, p]) => p.latestAt - performance.now())));
    try {
      confirmed = await Promise.race([this.nc.flush().then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)))]);
    } catch {
      // A closing connection (close() fails what is pending) or one that is down: unconfirmed.
    } finally {
      clearTimeout(timer);
    }
    const now = performance.now();
    for (const [tokenId, pending] of expired) {
      if (this.pending.get(tokenId) !== pending) continue; // answered meanwhile, or closed
      pending.confirming = false;
      if (pending.expiresAt > now) continue; // a taken or progress reply came meanwhile
      // Without the round trip, silence proves nothing: wait on rather than send it again.
      if (confirmed && !this.disconnected) this.timeOut(tokenId, pending);
      else extend(pending, now);
    }
  }

  private timeOut(tokenId: string, pending: PendingReply): void {
    this.pending.delete(tokenId);
    pending.reject(new TrellisError('TRELLIS_TIMEOUT', `${pending.target} did not answer in time`));
  }

  /** Fail every pending call with `error` and stop listening. */
  close(error = new TrellisError('TRELLIS_NATS_UNAVAILABLE', 'RPC client closed')): void {
    if (this.closedError) return;
    this.closedError = error;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    try {
      if (!this.nc.isClosed()) this.sub.unsubscribe();
    } catch {
      // A draining connection is taking the subscription away already.
    }
  }
}

/**
 * What an empty reply is: a taken or progress reply, the server's no-responders status, or
 * something else. Every call now gets a taken reply, so this runs once per call: it reads the
 * header block's first line from the bytes nats.js received (`_rdata`, headers' length in
 * `_msg.hdr`; the layout test/nats-fast-paths.test.ts pins) instead of decoding the whole set.
 * Trellis's interim replies have plain headers ("NATS/1.0" then CRLF); a server status puts
 * its code on that line ("NATS/1.0 503"). Falls back to nats.js's parser on another layout.
 */
export function emptyReplyKind(msg: Msg): 'progress' | 'no-responders' | 'other' {
  const raw = msg as unknown as { _rdata?: unknown; _msg?: { hdr?: unknown } };
  const length = raw._msg?.hdr;
  if (raw._rdata instanceof Uint8Array && typeof length === 'number') {
    const b = raw._rdata;
    if (length < 12) return 'other'; // no headers (or no room for a status line)
    if (b[8] === 0x20) return b[9] === 0x35 && b[10] === 0x30 && b[11] === 0x33 ? 'no-responders' : 'other';
    if (b[8] !== 0x0d) return 'other';
    // Plain headers: ours only when they name the progress header (taken replies do too).
    return indexOf(b, PROGRESS_NAME, length) >= 0 ? 'progress' : 'other';
  }
  const h = msg.headers;
  if (h?.get(RpcHeaders.progress)) return 'progress';
  return h?.code === 503 ? 'no-responders' : 'other';
}

const PROGRESS_NAME = new TextEncoder().encode(`\r\n${RpcHeaders.progress}:`);

/**
 * Where `needle` (lower case) starts in the first `end` bytes of `hay`, letters compared without
 * case (header names are case-insensitive), or -1. A few dozen bytes: a plain scan.
 */
function indexOf(hay: Uint8Array, needle: Uint8Array, end: number): number {
  outer: for (let i = 0; i + needle.length <= end; i++) {
    for (let j = 0; j < needle.length; j++) {
      const n = needle[j]!;
      const c = hay[i + j]!;
      if (c !== n && !(n >= 0x61 && n <= 0x7a && (c | 0x20) === n)) continue outer;
    }
    return i;
  }
  return -1;
}
