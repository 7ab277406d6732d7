/**
 * The outbound HTTP provider. It honours the calling actor's `allowedHosts` (checked by the
 * host before the call, and again here, so a provider never trusts a caller to have checked).
 */
import type { NatsConnection } from 'nats';
import type { KeyPair } from 'nkeys.js';
import { TrellisError } from '../../lattice/errors/index.ts';
import { hostAllowed } from '../../lattice/http/index.ts';
import type { Logger } from '../../lattice/log/index.ts';
import type { Subjects } from '../../lattice/subjects/index.ts';
import type { ActorResponse, Header } from '../../lattice/wire/index.ts';
import { serveProvider, type ProviderService } from '../service.ts';

/** Link config (or sealed secret) keys `header.<name>` are sent as that header on every request. */
const HEADER_PREFIX = 'header.';

/**
 * Start serving outbound HTTP for actors. A link's `header.<name>` values (typically a sealed
 * `--secret header.authorization=...`) go out with the actor's requests, so the actor uses an
 * API credential it never sees. A sealed header goes only to the destinations it was sealed for
 * (`link put --secret-host`): the request's actor and allowedHosts come from whoever publishes
 * it (any host may), so they cannot be what keeps a credential from a host of their choosing.
 * An unbound sealed header is never sent. A config (unsealed) header is no secret: it goes to
 * every allowed host.
 */
export function startHttpClientProvider(nc: NatsConnection, subjects: Subjects, logger: Logger, options: { timeoutMs?: number; secretsKey?: KeyPair } = {}): ProviderService {
  return serveProvider(nc, subjects, 'http-client', {
    async send(r, secrets) {
      const req = r.args[0] as { method: string; url: string; headers: Header[]; body: Uint8Array };
      let url: URL;
      try {
        url = new URL(req.url);
      } catch {
        throw new TrellisError('TRELLIS_BAD_REQUEST', `not an absolute URL: ${req.url}`);
      }
      if (!hostAllowed(r.allowedHosts ?? [], url)) throw new TrellisError('TRELLIS_SANDBOX_VIOLATION', `host not allowed: ${url.host}`);
      const headers = new Headers(req.headers);
      for (const [k, v] of Object.entries(r.config)) {
        if (!k.startsWith(HEADER_PREFIX)) continue;
        if (Object.hasOwn(secrets.hosts, k)) {
          const bound = secrets.hosts[k];
          if (!bound) throw new TrellisError('TRELLIS_SANDBOX_VIOLATION', `secret ${k} of the ${r.actor} → http-client link is bound to no destination, so it is never sent; put it again with --secret-host <host>`);
          if (!hostAllowed(bound, url)) throw new TrellisError('TRELLIS_SANDBOX_VIOLATION', `secret ${k} of the ${r.actor} → http-client link may be sent only to ${bound.join(', ')}, not to ${url.host}`);
        }
        headers.set(k.slice(HEADER_PREFIX.length), v);
      }
      const response = await fetch(url, {
        method: req.method,
        headers,
        body: req.body.length > 0 && req.method !== 'GET' && req.method !== 'HEAD' ? req.body : undefined,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        redirect: 'manual',
      });
      const responseHeaders: Header[] = [];
      response.headers.forEach((value, name) => responseHeaders.push([name, value]));
      const result: ActorResponse = { status: response.status, headers: responseHeaders, body: new Uint8Array(await response.arrayBuffer()) };
      return result;
    },
  }, logger.child({ provider: 'http-client' }), options.secretsKey);
}
