/**
 * The common shape of a capability provider: a lattice participant that answers capability
 * operations for one provider kind on a queue-group subject, so any number of provider
 * processes share the load and fail over like actors do.
 */
import type { NatsConnection, Subscription } from 'nats';
import { TrellisError, toTrellisError } from '../lattice/errors/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import type { ProviderKind } from '../lattice/links/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';
import { decode, encode, isRecord, type ProviderReply, type ProviderRequest } from '../lattice/wire/index.ts';

/** Operations of one provider kind: op name → implementation. */
export type ProviderOps = Record<string, (request: ProviderRequest) => Promise<unknown>>;

/** A running provider service. */
export interface ProviderService extends AsyncDisposable {
  readonly kind: ProviderKind;
  close(): Promise<void>;
}

/** Serve `ops` for `kind` on the lattice until closed. Bad requests get error replies, never crashes. */
export function serveProvider(nc: NatsConnection, subjects: Subjects, kind: ProviderKind, ops: ProviderOps, logger: Logger): ProviderService {
  const sub: Subscription = nc.subscribe(subjects.provider(kind), {
    queue: subjects.providerQueue(kind),
    callback: (_err, msg) => {
      void (async () => {
        let reply: ProviderReply;
        try {
          const request = decode<ProviderRequest>(msg.data, `${kind} request`);
          if (!isRecord(request) || typeof request.op !== 'string' || !Array.isArray(request.args) || !isRecord(request.config)) {
            throw new TrellisError('TRELLIS_BAD_REQUEST', `${kind} request must be a map with op, args and config`);
          }
          const op = Object.hasOwn(ops, request.op) ? ops[request.op] : undefined;
          if (!op) throw new TrellisError('TRELLIS_UNKNOWN_COMMAND', `${kind} has no operation "${request.op}"`);
          reply = { ok: true, value: await op(request) };
        } catch (err) {
          const error = toTrellisError(err);
          if (error.code === 'TRELLIS_INTERNAL') logger.error({ err }, 'provider operation failed');
          reply = { ok: false, error: error.toJSON() };
        }
        if (msg.reply) msg.respond(encode(reply));
      })();
    },
  });
  const close = async () => {
    if (!sub.isClosed()) await sub.drain();
  };
  return { kind, close, [Symbol.asyncDispose]: close };
}
