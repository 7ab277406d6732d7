/**
 * The gate every valid control command passes before a host runs it: charged to its caller (the
 * user its reply inbox names, see lattice/control/rate-limit.ts), then queued fairly among
 * callers. Over-limit commands are refused with TRELLIS_RATE_LIMITED without doing any of their
 * work.
 */
import { headers as natsHeaders, type Msg, type NatsConnection } from 'nats';
import { FairQueue, RateLimiter, callerOf, rateLimited, type CompiledRateLimit } from '../lattice/control/rate-limit.ts';
import { toTrellisError, type ErrorCode, type TrellisError } from '../lattice/errors/index.ts';
import type { ControlOp } from '../lattice/subjects/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import { encode, type ControlReply } from '../lattice/wire/index.ts';
import type { HostMetrics } from './metrics.ts';

export class ControlGate {
  private readonly limiter: RateLimiter;
  private readonly queue: FairQueue;
  private refusalLoggedAt = 0;

  constructor(
    private readonly hostId: string,
    private readonly lattice: string,
    private readonly options: CompiledRateLimit,
    private readonly nc: NatsConnection,
    private readonly metrics: HostMetrics,
    private readonly logger: Logger,
  ) {
    this.limiter = new RateLimiter(options);
    this.queue = new FairQueue(options);
  }

  /** Admit the command of `msg` and `run` it in its turn (run answers it), or refuse it at once. */
  admit(msg: Msg, op: ControlOp, run: () => Promise<void>): void {
    const caller = callerOf(msg.reply, this.lattice);
    const { charged, refused } = this.limiter.take(caller, Date.now());
    if (refused) return this.refuse(msg, op, refused);
    if (!this.queue.push(charged, run)) {
      this.refuse(msg, op, rateLimited(charged, Math.ceil(1000 / Math.max(1, this.options.ratePerSec)), `has ${this.options.maxPending} commands waiting`));
    }
  }

  /** Count a message dropped unanswered (it had no reply inbox to answer). */
  dropped(code: ErrorCode): void {
    this.metrics.controlRequests.inc({ op: 'unknown', result: code });
  }

  /**
   * Answer a command with `data`, or with the error `err` (when defined). Counted whether or not
   * anyone hears the answer: malformed input without a reply subject is dropped here, and shows in
   * trellis_control_requests_total{result="TRELLIS_BAD_REQUEST"}.
   */
  answer(msg: Msg, op: ControlOp | 'unknown', err: unknown, data?: unknown): void {
    let reply: ControlReply;
    if (err === undefined) reply = { ok: true, data };
    else {
      const error = toTrellisError(err);
      if (error.code === 'TRELLIS_INTERNAL') this.logger.error({ err, op }, 'control handler failed');
      else this.logger.debug({ code: error.code, op, message: error.message }, 'control request refused');
      reply = { ok: false, error: error.toJSON() };
    }
    this.metrics.controlRequests.inc({ op, result: reply.ok ? 'ok' : (reply.error.code as ErrorCode) });
    if (msg.reply) this.reply(msg.reply, reply);
  }

  /** Send a control reply envelope (with the answering host's id in a header). */
  reply(subject: string, reply: ControlReply): void {
    if (this.nc.isClosed()) return;
    const h = natsHeaders();
    h.set('trellis-host', this.hostId);
    this.nc.publish(subject, encode(reply), { headers: h });
  }

  private refuse(msg: Msg, op: ControlOp, error: TrellisError): void {
    this.metrics.controlRequests.inc({ op, result: error.code });
    const now = Date.now();
    // A flood must not become a flood of log lines: one line every few seconds tells the operator.
    if (now - this.refusalLoggedAt > 5000) {
      this.refusalLoggedAt = now;
      this.logger.warn({ code: error.code, op, message: error.message }, 'control commands refused (rate limit)');
    }
    if (msg.reply) this.reply(msg.reply, { ok: false, error: error.toJSON() });
  }
}
