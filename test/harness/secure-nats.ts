/**
 * nats-server with a config of the test's choosing (authorization users, accounts, a JWT
 * resolver, TLS), for the security tests: lattice/nats-server's own server with that text as
 * its extra config (ports picked by nats-server, JetStream in a temp dir, `reload` rewrites it
 * and sends SIGHUP). Also: certificates made with openssl into a temp dir.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startNats } from '../../lattice/nats-server/index.ts';

export interface ConfiguredNats extends AsyncDisposable {
  /** Client URL as the server reports it (nats://127.0.0.1:<port>), plus the port. */
  readonly url: string;
  readonly port: number;
  /** A temp dir of the test's own (host caches...), removed with the server. */
  readonly dir: string;
  /** Replace the config's extra blocks and reload (SIGHUP); resolves once the server logged the reload. */
  reload(extra: string): Promise<void>;
  /** What the server logged lately. */
  log(): string;
  stop(): Promise<void>;
}

/** Start nats-server with JetStream and `extra` config text (authorization, accounts, tls...). */
export async function startConfiguredNats(extra: string, options: { jetstream?: boolean } = {}): Promise<ConfiguredNats> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-secure-nats-'));
  const server = await startNats({ extraConfig: extra, jetstream: options.jetstream ?? true });
  const stop = async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
  return {
    url: server.url,
    port: server.port,
    dir,
    reload: (next) => server.reloadExtraConfig(next),
    log: () => server.log(),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA: the server must refuse it. */
  strangerCert: string;
  strangerKey: string;
}

/** Make the test's certificates (EC P-256, one day) into a temp dir. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-certs-'));
  const f = (name: string) => path.join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string) => {
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '1', '-subj', `/CN=${name}`);
  };
  const leaf = (name: string, signer: string, ext: string) => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`);
    execFileSync('sh', ['-c', `printf '%s\\n' '${ext}' > ${name}.ext`], { cwd: dir });
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${signer}.pem`), '-CAkey', f(`${signer}.key`), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '1', '-extfile', f(`${name}.ext`));
  };
  ca('ca');
  ca('stranger-ca');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth');
  leaf('stranger', 'stranger-ca', 'extendedKeyUsage=clientAuth');
  return {
    dir,
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    strangerCert: f('stranger.pem'),
    strangerKey: f('stranger.key'),
  };
}
