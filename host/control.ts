/**
 * How a host takes a control message: one without a reply inbox is dropped unread; the rest are
 * checked whole first (subject, size and shape limits, then
 * its operation's validator), so malformed input is answered with TRELLIS_BAD_REQUEST naming the
 * field (or dropped when there is no reply subject) and counted either way. Checking costs about
 * what refusing costs, so only a valid command is charged to its caller's rate limit and run in
 * its fair turn (control-gate.ts), behind the controller fence, by its handler.
 */
import type { Msg } from 'nats';
import { TrellisError } from '../lattice/errors/index.ts';
import { parseControlSubject, ControlOps, type ControlOp } from '../lattice/subjects/index.ts';
import { ControlRequests, decode, type ControlReplies, type ControlRequest, type WireLimits } from '../lattice/wire/index.ts';
import type { ControlGate } from './control-gate.ts';

/** One handler per control operation: a validated, typed request in, its reply out; throw TrellisError to fail. */
export type ControlHandlers = { [Op in ControlOp]: (request: ControlRequest<Op>) => Promise<ControlReplies[Op]> | ControlReplies[Op] };

/** `noun.verb` of a control subject → its operation. */
const OPS_BY_SUBJECT = new Map<string, ControlOp>(Object.entries(ControlOps).map(([op, [noun, verb]]) => [`${noun}.${verb}`, op as ControlOp]));

/** A function taking one control message (never throws: every failure becomes an error envelope). */
export function controlDispatcher(host: { lattice: string; limits: WireLimits; gate: ControlGate }, handlers: ControlHandlers): (msg: Msg) => void {
  /** The highest controller fence this host has obeyed (0: none yet). */
  let highestFence = 0;

  /** Check a valid request's fence, run its handler. */
  const dispatch = <Op extends ControlOp>(op: Op, request: ControlRequest<Op>): Promise<ControlReplies[Op]> | ControlReplies[Op] => {
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

  return (msg) => {
    // A command must come with a reply inbox. Copies a JetStream stream republishes (no reply) or
    // delivers (a $JS.ACK reply) are dropped unread: a participant allowed to create a stream
    // must not be able to command hosts through it, and a command nobody hears is not a client's.
    if (!msg.reply?.startsWith('_INBOX.')) {
      host.gate.dropped('TRELLIS_BAD_REQUEST');
      return;
    }
    let op: ControlOp | 'unknown' = 'unknown';
    let request: ControlRequest<ControlOp>;
    try {
      const parsed = parseControlSubject(msg.subject);
      const known = parsed && OPS_BY_SUBJECT.get(`${parsed.noun}.${parsed.verb}`);
      if (!parsed || !known) throw new TrellisError('TRELLIS_UNKNOWN_COMMAND', `unknown control command on ${msg.subject}`);
      op = known;
      // Only ping is broadcast; every other command must name its host, so one stray message
      // can never make every host start or stop something.
      if (parsed.hostId === undefined && op !== 'hostPing') {
        throw new TrellisError('TRELLIS_BAD_REQUEST', `control command "${op}" must be addressed to one host`);
      }
      // Size, nesting and lengths are checked before msgpackr sees the bytes (wire/limits.ts).
      const body = decode<unknown>(msg.data, `control ${op}`, host.limits);
      // The lattice is checked before the rest, so a request for another lattice says so.
      const lattice = (body as { lattice?: unknown } | null)?.lattice;
      if (typeof lattice === 'string' && lattice !== host.lattice) {
        throw new TrellisError('TRELLIS_WRONG_LATTICE', `request is for lattice "${lattice}", this host is in "${host.lattice}"`);
      }
      request = ControlRequests[op](body, op) as ControlRequest<ControlOp>;
    } catch (err) {
      return host.gate.answer(msg, op, err);
    }
    const valid = op;
    host.gate.admit(msg, valid, async () => {
      try {
        host.gate.answer(msg, valid, undefined, await dispatch(valid, request));
      } catch (err) {
        host.gate.answer(msg, valid, err);
      }
    });
  };
}
