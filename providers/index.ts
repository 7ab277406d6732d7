/** Capability providers: the single entry others import. */
import type { NatsConnection } from 'nats';
import type { Logger } from '../lattice/log/index.ts';
import { providerKind } from '../lattice/links/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';
import { startHttpClientProvider } from './http-client/index.ts';
import { startKeyValueProvider } from './keyvalue-nats/index.ts';
import type { ProviderService } from './service.ts';

export type { ProviderService, SupervisorLink } from './service.ts';
export { followSupervisor } from './service.ts';
export { startGateway, openHttpRoutes, type Gateway, type GatewayOptions, type HttpRoute, type HttpRouteStore } from './http-gateway/index.ts';

/** Start a provider of `kind` on a connection (in this process). */
export function startProvider(kind: string, nc: NatsConnection, subjects: Subjects, logger: Logger): ProviderService {
  switch (providerKind(kind)) {
    case 'keyvalue-nats':
      return startKeyValueProvider(nc, subjects, logger);
    case 'http-client':
      return startHttpClientProvider(nc, subjects, logger);
  }
}
