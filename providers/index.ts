/** Capability providers: the single entry others import. */
import type { NatsConnection } from 'nats';
import type { KeyPair } from 'nkeys.js';
import type { Logger } from '../lattice/log/index.ts';
import { providerKind, type ProviderKind } from '../lattice/links/index.ts';
import { badOption, latticeOption, LogLevels, serversOption, type LogLevel } from '../lattice/options/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';
import { startHttpClientProvider } from './http-client/index.ts';
import { startKeyValueProvider } from './keyvalue-nats/index.ts';
import type { ProviderService } from './service.ts';

export type { ProviderService, SupervisorLink } from './service.ts';
export { followSupervisor } from './service.ts';
export { startGateway, openHttpRoutes, type Gateway, type GatewayOptions, type HttpRoute, type HttpRouteStore } from './http-gateway/index.ts';

/** Start a provider of `kind` on a connection (in this process); `secretsKey` opens sealed link secrets. */
export function startProvider(kind: string, nc: NatsConnection, subjects: Subjects, logger: Logger, secretsKey?: KeyPair): ProviderService {
  switch (providerKind(kind)) {
    case 'keyvalue-nats':
      return startKeyValueProvider(nc, subjects, logger, secretsKey);
    case 'http-client':
      return startHttpClientProvider(nc, subjects, logger, { secretsKey });
  }
}

/** What a standalone provider process is started with. */
export interface ProviderSettings {
  kind: string;
  nats?: string | string[];
  lattice?: string;
  logLevel?: string;
}

/** The complete, validated options of a provider process. */
export interface CompiledProviderOptions {
  kind: ProviderKind;
  servers: string[];
  lattice: string;
  logLevel: LogLevel;
}

/** Validate a provider's options once, at start, naming the flag at fault. */
export function compileProviderOptions(input: ProviderSettings, env: NodeJS.ProcessEnv = process.env): CompiledProviderOptions {
  let kind: ProviderKind;
  try {
    kind = providerKind(input.kind);
  } catch (err) {
    return badOption('<kind>', (err as Error).message);
  }
  const logLevel = input.logLevel ?? env.TRELLIS_LOG_LEVEL ?? 'info';
  if (!(LogLevels as readonly string[]).includes(logLevel)) badOption('--log-level', `must be one of ${LogLevels.join(', ')}`);
  return { kind, servers: serversOption(input.nats, env), lattice: latticeOption(input.lattice, env), logLevel: logLevel as LogLevel };
}
