/**
 * A host's entry in the lattice's host registry (lattice/control): written before the host is
 * announced, refreshed with every heartbeat, taken away on a graceful stop. Clients that list the
 * registry know which hosts to wait for. A lattice without JetStream has no registry: the host
 * then tries again only every REGISTRY_RETRY_MS, not at every heartbeat.
 */
import type { NatsConnection } from 'nats';
import { openRegistry, registerHost, type RegistryEntry } from '../lattice/control/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import { openOnce } from '../lattice/state/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';

/** How long a host waits before it tries the host registry again after it could not open it. */
const REGISTRY_RETRY_MS = 30_000;

/** The registry entry of one host. */
export class HostRegistration {
  private readonly registry = openOnce(() => openRegistry(this.nc, this.subjects));
  private failureLogged = false;
  private retryAt = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly entry: RegistryEntry,
    private readonly logger: Logger,
  ) {}

  /** Write or refresh the entry; failures are logged once and never thrown. */
  async register(): Promise<void> {
    if (Date.now() < this.retryAt) return;
    try {
      await registerHost(await this.registry.get(), this.entry);
    } catch (err) {
      this.retryAt = Date.now() + REGISTRY_RETRY_MS;
      if (this.failureLogged) return;
      this.failureLogged = true;
      this.logger.info({ err: (err as Error).message }, 'host registry unavailable (no JetStream?); clients wait for silence instead');
    }
  }

  /** Take the entry away (a graceful stop), if the registry was ever opened. */
  async deregister(): Promise<void> {
    const opened = this.registry.opened();
    if (!opened) return;
    try {
      await (await opened).delete(this.entry.id);
    } catch {
      // The entry expires with its TTL anyway.
    }
  }
}
