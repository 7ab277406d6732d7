/** The imports a shared worker gives one actor's instances (trellis:actor and WASI, deny by default). */
import { KeyValueOps, type ActorRequest, type ActorResponse } from '../../lattice/wire/index.ts';
import { hostAllowed } from '../../lattice/http/index.ts';
import type { HostCall } from './protocol.ts';
import { wasiImports, type OutgoingHttp, type SandboxConfig, type SandboxHost } from './wasi/index.ts';

/** What the worker provides an actor's imports: its log, violations, host calls and clock. */
export interface ImportContext {
  log(level: string, message: string): void;
  /** Record a policy violation of the running invocation. */
  violation(message: string): void;
  /** A synchronous call to the main thread (capabilities). */
  hostCall(call: Omit<HostCall, 'invocationId' | 'seq' | 'actor'>): unknown;
  /** What is left of the running invocation's time, ms (a nested actor call's budget). */
  remainingMs(): number;
}

/**
 * The imports of one actor: its own sandbox (env, grants, hosts), deny by default. A worker
 * holds many actors; each gets its own table, so no actor sees another's grants or env.
 */
export function actorImports(sandbox: SandboxConfig, ctx: ImportContext): Record<string, unknown> {
  const { log, hostCall } = ctx;
  const host: SandboxHost = {
    violation: ctx.violation,
    output: (stream, line) => log(stream === 'stderr' ? 'warn' : 'info', line),
    httpSend: (req: OutgoingHttp) => hostCall({ op: 'httpSend', args: [req] }) as ActorResponse,
  };
  const trellisImports: Record<string, Record<string, unknown>> = {
    'trellis:actor/logging': { log },
    'trellis:actor/keyvalue': Object.fromEntries(KeyValueOps.map((m) => [m, (...args: unknown[]) => hostCall({ op: 'keyvalue', method: m, args })])),
    'trellis:actor/http-client': {
      send(req: OutgoingHttp) {
        if (!URL.canParse(req.url)) throw `invalid url: ${req.url}`;
        const url = new URL(req.url);
        if (!hostAllowed(sandbox.allowedHosts, url)) {
          const message = `host not allowed: ${url.hostname}`;
          host.violation(message);
          throw `TRELLIS_SANDBOX_VIOLATION: ${message}`;
        }
        return hostCall({ op: 'httpSend', args: [req] });
      },
    },
    'trellis:actor/actors': {
      call: (target: string, req: ActorRequest) => hostCall({ op: 'callActor', args: [target, req], remainingMs: ctx.remainingMs() }),
    },
    'trellis:actor/config': {
      getEnv(name: string) {
        if (!sandbox.allowedEnvVars.includes(name)) {
          host.violation(`env var not allowed: ${name}`);
          throw `env var not allowed: ${name}`;
        }
        const hit = sandbox.env.find(([k]) => k === name);
        if (!hit) throw `env var not set: ${name}`;
        return hit[1];
      },
    },
  };
  const table = { ...wasiImports(sandbox, host), ...trellisImports };
  // Any `wasi:*@0.2.x` (or unversioned) key resolves to the one implementation; others fail the load.
  return new Proxy({} as Record<string, unknown>, {
    get(_, key) {
      if (typeof key !== 'string') return undefined;
      const at = key.lastIndexOf('@');
      const name = at < 0 ? key : key.slice(0, at);
      const version = at < 0 ? '' : key.slice(at + 1);
      const ok = version === '' || (name.startsWith('wasi:') ? /^0\.2\.\d+/.test(version) : /^0\.1\.\d+/.test(version));
      const impl = ok ? table[name] : undefined;
      if (!impl) throw new Error(`unsupported import ${key}`);
      return impl;
    },
  });
}
