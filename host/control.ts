/**
 * How a host answers control commands: subject to operation, addressing, size and lattice
 * checks, the operation's contract, the controller fence, then its handler. Every failure is an
 * error envelope on the reply subject, never a throw.
 */
import { headers as natsHeaders, type Msg, type NatsConnection } from 'nats';
import { TrellisError, toTrellisError, type ErrorCode } from '../lattice/errors/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import { parseControlSubject, ControlOps, type ControlOp } from '../lattice/subjects/index.ts';
import { ControlRequests, decode, encode, type ControlReplies, type ControlReply, type ControlRequest } from '../lattice/wire/index.ts';
import type { HostMetrics } from './metrics.ts';

/** One handler per control operation: a validated, typed request in, its reply out; throw TrellisError to fail. */
export type ControlHandlers = { [Op in ControlOp]: (request: ControlRequest<Op>) => Promise<ControlReplies[Op]> | ControlReplies[Op] };

/** `noun.verb` of a control subject → its operation. */
const OPS_BY_SUBJECT = new Map<string, ControlOp>(Object.entries(ControlOps).map(([op, [noun, verb]]) => [`${noun}.${verb}`, op as ControlOp]));

/** What answering needs of the host. */
export interface ControlContext {
  id: string;
  nc: NatsConnection;
  lattice: string;
  maxPayloadBytes: number;
  logger: Logger;
  metrics: HostMetrics;
}

/** A function answering one control message with `handlers`. */
export function controlResponder(host: ControlContext, handlers: ControlHandlers): (msg: Msg) => Promise<void> {
  /** The highest controller fence this host has obeyed (0: none yet). */
  let highestFence = 0;

  /** Validate a request against its operation's contract, check its fence, run its handler. */
  const dispatch = <Op extends ControlOp>(op: Op, body: unknown): Promise<ControlReplies[Op]> | ControlReplies[Op] => {
    const request = ControlRequests[op](body, op) as ControlRequest<Op>;
    const fence = (request as { fence?: number }).fence;
    if (fence !== undefined) {
      // A controller's term fences its commands (see the contract): a lower fence than one
      // already obeyed comes from a leader that has been replaced, and must not act.
      if (fence < highestFence) {
        throw new TrellisError('TRELLIS_CONFLICT', `command from a replaced controller (fence ${fence}; this host follows fence ${highestFence})`);
      }
      highestFence = fence;
    }
    return handlers[op](request);
  };

  return async (msg) => {
    let op: ControlOp | 'unknown' = 'unknown';
    let reply: ControlReply;
    try {
      const parsed = parseControlSubject(msg.subject);
      const known = parsed && OPS_BY_SUBJECT.get(`${parsed.noun}.${parsed.verb}`);
      if (!parsed || !known) throw new TrellisError('TRELLIS_UNKNOWN_COMMAND', `unknown control command on ${msg.subject}`);
      op = known;
      // Only ping is broadcast; every other command must name its host, so one stray message
      // can never make every host start or stop something.
      if (parsed.hostId === undefined && op !== 'hostPing') {
        if (!msg.reply) return;
        throw new TrellisError('TRELLIS_BAD_REQUEST', `control command "${op}" must be addressed to one host`);
      }
      if (msg.data.length > host.maxPayloadBytes) {
        throw new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', `control request of ${msg.data.length} bytes exceeds ${host.maxPayloadBytes}`);
      }
      const body = decode<unknown>(msg.data, `control ${op}`);
      // The lattice is checked before the rest, so a request for another lattice says so.
      const lattice = (body as { lattice?: unknown } | null)?.lattice;
      if (typeof lattice === 'string' && lattice !== host.lattice) {
        throw new TrellisError('TRELLIS_WRONG_LATTICE', `request is for lattice "${lattice}", this host is in "${host.lattice}"`);
      }
      reply = { ok: true, data: await dispatch(op, body) };
    } catch (err) {
      const error = toTrellisError(err);
      if (error.code === 'TRELLIS_INTERNAL') host.logger.error({ err, op }, 'control handler failed');
      else host.logger.debug({ code: error.code, op, message: error.message }, 'control request refused');
      reply = { ok: false, error: error.toJSON() };
    }
    host.metrics.controlRequests.inc({ op, result: reply.ok ? 'ok' : (reply.error.code as ErrorCode) });
    if (msg.reply && !host.nc.isClosed()) {
      const h = natsHeaders();
      h.set('trellis-host', host.id);
      host.nc.publish(msg.reply, encode(reply), { headers: h });
    }
  };
}
