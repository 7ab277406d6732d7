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
import { checkProviderRequest, decode, encode, PROVIDER_WIRE_LIMITS, type ProviderReply, type ProviderRequest } from '../lattice/wire/index.ts';

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
  /** Requests refused as malformed (bad msgpack, limits, schema) since start. */
  readonly rejected: number;
  close(): Promise<void>;
}

/**
 * Serve `ops` for `kind` on the lattice until closed. Bad requests get error replies, never crashes.
 * With `secretsKey` (the lattice's curve key) a link's sealed secrets are opened into the config
 * the op sees, and never leave this process: an error that quotes one says `***` instead.
 */
export function serveProvider(nc: NatsConnection, subjects: Subjects, kind: ProviderKind, ops: ProviderOps, logger: Logger, secretsKey?: KeyPair): ProviderService {
  let rejected = 0;
  const sub: Subscription = nc.subscribe(subjects.provider(kind), {
    queue: subjects.providerQueue(kind),
    callback: (_err, msg) => {
      void (async () => {
        let reply: ProviderReply;
        let opened: string[] = [];
        try {
          let request: ProviderRequest;
          try {
            // Scanned within the provider limits, decoded, then the envelope and the operation's
            // arguments checked (lattice/wire/provider.ts): an operation never sees a bad request.
            request = checkProviderRequest(decode(msg.data, `${kind} request`, PROVIDER_WIRE_LIMITS), kind);
          } catch (err) {
            rejected++;
            throw err;
          }
          const op = Object.hasOwn(ops, request.op) ? ops[request.op] : undefined;
          if (!op) throw new TrellisError('TRELLIS_UNKNOWN_COMMAND', `${kind} has no operation "${request.op}"`);
          const secrets: OpenedSecrets = { hosts: {} };
          if (request.secrets !== undefined) {
            const unsealed = unsealBound(request.config, request.secrets, { actor: String(request.actor), provider: kind }, secretsKey);
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
          else logger.debug({ code: error.code, message: error.message }, 'provider request refused');
          reply = { ok: false, error: error.toJSON() };
        }
        // Without a reply subject a refused request is dropped (and counted in `rejected`).
        if (msg.reply) msg.respond(encode(reply));
      })();
    },
  });
  const close = async () => {
    if (!sub.isClosed()) await sub.drain();
  };
  return {
    kind,
    close,
    get rejected() {
      return rejected;
    },
    [Symbol.asyncDispose]: close,
  };
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
