/**
 * nats-server with a config of the test's choosing (authorization users, accounts, a JWT
 * resolver, TLS), for the security tests: ports picked by nats-server (`-1`, read back from the
 * ports file), JetStream in a temp dir, `reload` rewrites the config and sends SIGHUP, and the
 * process is killed when disposed. Also: certificates made with openssl into a temp dir.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { natsServerBinary } from '../../lattice/nats-server/index.ts';

export interface ConfiguredNats extends AsyncDisposable {
  /** Client URL as the server reports it (nats://127.0.0.1:<port>), plus the port. */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Replace the config's extra blocks and reload (SIGHUP); resolves once the server logged the reload. */
  reload(extra: string): Promise<void>;
  /** Everything the server logged so far. */
  log(): string;
  stop(): Promise<void>;
}

/** Start nats-server with JetStream and `extra` config text (authorization, accounts, tls...). */
export async function startConfiguredNats(extra: string, options: { jetstream?: boolean } = {}): Promise<ConfiguredNats> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-secure-nats-'));
  const conf = path.join(dir, 'nats.conf');
  // The name must stay the same across reloads (nats-server refuses to change it).
  const name = `secure-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const text = (body: string) =>
    [
      `server_name: ${name}`,
      'listen: 127.0.0.1:-1',
      'http: 127.0.0.1:-1',
      'ping_interval: "1s"',
      'ping_max: 2',
      options.jetstream === false ? '' : `jetstream { store_dir: ${JSON.stringify(path.join(dir, 'js'))}, max_memory_store: 128MB, max_file_store: 512MB }`,
      body,
    ].join('\n') + '\n';
  await writeFile(conf, text(extra));
  const child = spawn(natsServerBinary(), ['-c', conf, '--ports_file_dir', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  process.once('exit', () => child.kill('SIGKILL'));
  const deadline = Date.now() + 20_000;
  let ports: { nats?: string[]; monitoring?: string[] } = {};
  while (!ports.nats?.[0] || !ports.monitoring?.[0]) {
    if (child.exitCode !== null) throw new Error(`nats-server exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`nats-server wrote no ports file: ${stderr}`);
    const file = (await readdir(dir)).find((f) => f.endsWith(`_${child.pid}.ports`));
    try {
      if (file) ports = JSON.parse(await readFile(path.join(dir, file), 'utf8'));
    } catch {
      // half-written: read again
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  while (!(await fetch(`${ports.monitoring![0]}/healthz`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline) throw new Error(`nats-server not healthy: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const port = Number(new URL(ports.nats![0]!).port);
  let stopped: Promise<void> | undefined;
  const server: ConfiguredNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    log: () => stderr,
    async reload(next) {
      const before = (stderr.match(/Reloaded server configuration/g) ?? []).length;
      await writeFile(conf, text(next));
      child.kill('SIGHUP');
      const until = Date.now() + 10_000;
      while ((stderr.match(/Reloaded server configuration/g) ?? []).length <= before) {
        if (Date.now() > until) throw new Error(`nats-server did not reload: ${stderr.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    [Symbol.asyncDispose]() {
      return this.stop();
    },
  };
  return server;
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
