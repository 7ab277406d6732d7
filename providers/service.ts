/**
 * The common shape of a capability provider: a lattice participant that answers capability
 * operations for one provider kind on a queue-group subject, so any number of provider
 * processes share the load and fail over like actors do.
 */
import type { NatsConnection, Subscription } from 'nats';
import type { KeyPair } from 'nkeys.js';
import { TrellisError, toTrellisError } from '../lattice/errors/index.ts';
import { SECRET_MASK, unsealBound } from '../lattice/secrets/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import type { ProviderKind } from '../lattice/links/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';
import { decode, encode, isRecord, type ProviderReply, type ProviderRequest } from '../lattice/wire/index.ts';

/**
 * What the provider itself learnt opening a request's secrets (never from the request): per
 * secret name, the destinations it was sealed for (undefined: unbound).
 */
export interface OpenedSecrets {
  hosts: Record<string, string[] | undefined>;
}

/** Operations of one provider kind: op name → implementation. */
export type ProviderOps = Record<string, (request: ProviderRequest, secrets: OpenedSecrets) => Promise<unknown>>;

/** A running provider service. */
export interface ProviderService extends AsyncDisposable {
  readonly kind: ProviderKind;
  close(): Promise<void>;
}

/**
 * Serve `ops` for `kind` on the lattice until closed. Bad requests get error replies, never crashes.
 * With `secretsKey` (the lattice's curve key) a link's sealed secrets are opened into the config
 * the op sees, and never leave this process: an error that quotes one says `***` instead.
 */
export function serveProvider(nc: NatsConnection, subjects: Subjects, kind: ProviderKind, ops: ProviderOps, logger: Logger, secretsKey?: KeyPair): ProviderService {
  const sub: Subscription = nc.subscribe(subjects.provider(kind), {
    queue: subjects.providerQueue(kind),
    callback: (_err, msg) => {
      void (async () => {
        let reply: ProviderReply;
        let opened: string[] = [];
        try {
          const request = decode<ProviderRequest>(msg.data, `${kind} request`);
          if (!isRecord(request) || typeof request.op !== 'string' || !Array.isArray(request.args) || !isRecord(request.config)) {
            throw new TrellisError('TRELLIS_BAD_REQUEST', `${kind} request must be a map with op, args and config`);
          }
          const op = Object.hasOwn(ops, request.op) ? ops[request.op] : undefined;
          if (!op) throw new TrellisError('TRELLIS_UNKNOWN_COMMAND', `${kind} has no operation "${request.op}"`);
          const secrets: OpenedSecrets = { hosts: {} };
          if (request.secrets !== undefined) {
            if (!isRecord(request.secrets)) throw new TrellisError('TRELLIS_BAD_REQUEST', `${kind} request secrets must be a map`);
            const unsealed = unsealBound(request.config, request.secrets as Record<string, string>, { actor: String(request.actor), provider: kind }, secretsKey);
            const config = unsealed.config;
            opened = Object.keys(request.secrets).map((name) => config[name]!).filter((v) => v !== '');
            secrets.hosts = unsealed.hosts;
            request.config = config;
            delete request.secrets;
          }
          reply = { ok: true, value: await op(request, secrets) };
        } catch (err) {
          let error = toTrellisError(err);
          const redacted = opened.reduce((text, secret) => text.split(secret).join(SECRET_MASK), error.message);
          if (redacted !== error.message) error = new TrellisError(error.code, redacted);
          // The redacted error only, once a secret was opened: the original may quote it (message, stack).
          if (error.code === 'TRELLIS_INTERNAL') logger.error({ err: opened.length > 0 ? error : err }, 'provider operation failed');
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

/** A provider's link to the host that started it (see `followSupervisor`). */
export interface SupervisorLink {
  /** Tell the host the provider serves. */
  ready(): void;
}

/**
 * When a host started this process (host/providers.ts spawns `trellis provider` with an IPC
 * channel): say "ready" on that channel, and stop when it closes. The kernel closes it however the
 * host died, even by SIGKILL, when nothing else would tell a provider: its NATS connection is
 * fine, so it would serve on, orphaned, for good. Stopping goes through SIGTERM, the same drain a
 * signal from the host gets. Started by hand (no channel), it does nothing.
 */
export function followSupervisor(logger: Logger): SupervisorLink {
  if (!process.send || !process.connected) return { ready() {} };
  process.once('disconnect', () => {
    logger.warn('the host that started this provider is gone; stopping');
    process.kill(process.pid, 'SIGTERM');
  });
  // The channel must not keep the process alive by itself: it ends when its work does.
  process.channel?.unref();
  return {
    ready() {
      // With a callback, a channel that closed meanwhile is an ignored error, not a crash.
      if (process.connected) process.send!({ type: 'ready' }, undefined, undefined, () => {});
    },
  };
}
