/**
 * compose.yaml, validated offline (no Docker engine needed): the file is checked by Docker Compose
 * itself (`docker compose config`, or Debian's `docker-compose` package), then for what makes it
 * the multi-cloud lattice: two NATS clusters joined by gateways that name each other, JetStream,
 * short pings, hosts labelled per cloud and connected to their own cloud, the gateway, and every
 * mounted or referenced file present. Each nats-server config is parsed by the real nats-server
 * (`-t`). The topology itself runs in test/failover.test.ts (startSupercluster + spawnHost).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { natsServerBinary } from './harness/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const composeFile = path.join(root, 'compose.yaml');

interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string } | string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: string[] | Record<string, unknown>;
  profiles?: string[];
}

// Merge keys (`<<: *anchor`) resolved, as Compose does.
const compose = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

/** The value after `flag` in a command. */
function flag(command: string[] | undefined, name: string): string | undefined {
  const i = command?.indexOf(name) ?? -1;
  return i >= 0 ? command![i + 1] : undefined;
}

/** Every value of a repeated flag. */
function flags(command: string[] | undefined, name: string): string[] {
  return (command ?? []).flatMap((v, i, all) => (v === name && i + 1 < all.length ? [all[i + 1]!] : []));
}

/** Bind mounts of a service as { host path (absolute), container path, readOnly }. */
function binds(service: Service): { source: string; target: string; readOnly: boolean }[] {
  return (service.volumes ?? [])
    .filter((v) => v.startsWith('.') || v.startsWith('/'))
    .map((v) => {
      const [source, target, mode] = v.split(':') as [string, string, string?];
      return { source: path.resolve(root, source), target, readOnly: mode === 'ro' };
    });
}

/** The file on this machine that a container path of `service` comes from (through a bind). */
function hostPathOf(service: Service, containerPath: string): string | undefined {
  for (const b of binds(service)) {
    if (containerPath === b.target || containerPath.startsWith(`${b.target}/`)) return path.join(b.source, path.relative(b.target, containerPath));
  }
  return undefined;
}

/** The nats-server services with their config file (host path) and environment. */
const natsServices = Object.entries(services)
  .filter(([, s]) => s.image?.startsWith('nats:'))
  .map(([name, s]) => ({ name, service: s, conf: hostPathOf(s, flag(s.command, '--config') ?? '') }));

/** A nats config with its includes inlined (relative to the including file). */
function natsConfText(file: string): string {
  return readFileSync(file, 'utf8').replace(/^\s*include\s+["']?([^"'\s]+)["']?\s*$/gm, (_m, inc: string) => natsConfText(path.resolve(path.dirname(file), inc)));
}

/** The top-level block `name { ... }` of a nats config (balanced braces), or undefined. */
function block(text: string, name: string): string | undefined {
  const start = new RegExp(`^\\s*${name}\\s*[:=]?\\s*\\{`, 'm').exec(text);
  if (!start) return undefined;
  let depth = 0;
  for (let i = start.index + start[0].length - 1; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(start.index + start[0].length, i);
  }
  return undefined;
}

/** The Compose CLI available here: v2 plugin first, then Debian's docker-compose (v1). */
function composeCli(): { cmd: string; args: string[] } | undefined {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return { cmd: 'docker', args: ['compose'] };
  if (spawnSync('docker-compose', ['--version'], { stdio: 'ignore' }).status === 0) return { cmd: 'docker-compose', args: [] };
  return undefined;
}

describe('compose.yaml multi-cloud lattice', () => {
  it('compose - Docker Compose accepts the file (offline `config`, no engine needed)', () => {
    const cli = composeCli();
    if (!cli) {
      throw new Error('no Docker Compose CLI to validate compose.yaml: install the Debian package `docker-compose` (apt-get install -y docker-compose) or the Docker Compose v2 plugin');
    }
    const result = spawnSync(cli.cmd, [...cli.args, '-f', composeFile, 'config', '--services'], { cwd: root, encoding: 'utf8' });
    expect(result.stderr, `${cli.cmd} ${cli.args.join(' ')} config`).not.toMatch(/invalid|error/i);
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n').sort()).toEqual(Object.keys(services).sort());
  });

  it('compose - two NATS clusters aws and gcp of two servers each, each config parsed by nats-server -t', async () => {
    const byCluster = new Map<string, string[]>();
    for (const { name, service, conf } of natsServices) {
      expect(service.image, name).toMatch(/^nats:2\.1\d/);
      expect(conf, `${name}: --config must point into a bind-mounted folder`).toBeDefined();
      expect(existsSync(conf!), `${name}: ${conf} exists`).toBe(true);
      const cluster = /^\s*cluster\s*\{[^}]*?name\s*[:=]\s*(\w+)/m.exec(natsConfText(conf!))?.[1];
      expect(cluster, `${name}: cluster name`).toBeDefined();
      byCluster.set(cluster!, [...(byCluster.get(cluster!) ?? []), name]);
      // The real parser, with the environment the container gets.
      const check = spawnSync(natsServerBinary(), ['-t', '-c', conf!], { encoding: 'utf8', env: { ...process.env, ...service.environment } });
      expect(`${check.stdout}${check.stderr}`, `${name}: nats-server -t -c ${conf}`).toMatch(/configuration file .* is valid/);
      expect(check.status).toBe(0);
    }
    expect(Object.fromEntries(byCluster)).toEqual({ aws: ['aws-1', 'aws-2'], gcp: ['gcp-1', 'gcp-2'] });

    // -t really parses: a broken file fails (so the check above is not vacuous).
    const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-compose-'));
    try {
      await writeFile(path.join(dir, 'broken.conf'), 'cluster { name: aws, routes: [\n');
      expect(spawnSync(natsServerBinary(), ['-t', '-c', path.join(dir, 'broken.conf')]).status).not.toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('compose - the clusters name each other as gateways, route within themselves, run JetStream with short pings', () => {
    for (const { name, service, conf } of natsServices) {
      const text = natsConfText(conf!);
      const serverName = /^\s*server_name\s*[:=]\s*(\S+)/m.exec(text)?.[1];
      expect(serverName === name || serverName === '$SERVER_NAME' && service.environment?.SERVER_NAME === name, `${name}: server_name`).toBe(true);
      const cluster = block(text, 'cluster')!;
      const clusterName = /name\s*[:=]\s*(\w+)/.exec(cluster)![1]!;
      // Routes go to the servers of the same cluster, on their cluster port.
      const routes = [...cluster.matchAll(/nats-route:\/\/([\w-]+):(\d+)/g)].map((m) => m[1]);
      const sameCluster = natsServices.filter((s) => /name\s*[:=]\s*(\w+)/.exec(block(natsConfText(s.conf!), 'cluster')!)![1] === clusterName).map((s) => s.name);
      expect(routes.sort(), `${name}: routes`).toEqual(sameCluster.sort());
      // The gateway carries the cluster's name and lists every other cluster by its servers.
      const gateway = block(text, 'gateway')!;
      expect(/name\s*[:=]\s*(\w+)/.exec(gateway)![1], `${name}: gateway name = cluster name`).toBe(clusterName);
      const remotes = new Map([...gateway.matchAll(/\{\s*name\s*[:=]\s*(\w+)\s*,?\s*urls\s*[:=]\s*\[([^\]]*)\]/g)].map((m) => [m[1]!, [...m[2]!.matchAll(/nats:\/\/([\w-]+):(\d+)/g)].map((u) => u[1]!)]));
      const other = clusterName === 'aws' ? 'gcp' : 'aws';
      expect(remotes.get(other)?.sort(), `${name}: gateway to ${other}`).toEqual([`${other}-1`, `${other}-2`]);
      for (const host of remotes.get(other)!) {
        // The URL's port is where that server's gateway listens.
        const remote = natsServices.find((s) => s.name === host)!;
        const port = /listen\s*[:=]\s*[\d.]*:(\d+)/.exec(block(natsConfText(remote.conf!), 'gateway')!)![1];
        expect(gateway).toContain(`nats://${host}:${port}`);
      }
      expect(block(text, 'jetstream'), `${name}: JetStream`).toBeDefined();
      const ping = /^\s*ping_interval\s*[:=]\s*"?(\d+)(s|ms)?"?/m.exec(text);
      expect(ping, `${name}: ping_interval`).not.toBeNull();
      expect(Number(ping![1]) * (ping![2] === 'ms' ? 0.001 : 1), `${name}: ping_interval is short`).toBeLessThanOrEqual(5);
    }
  });

  it('compose - hosts are labelled per cloud and connect to their own cloud; the gateway listens on 8080', () => {
    const cloudOf = (url: string) => /nats:\/\/(aws|gcp)-\d+:4222/.exec(url)?.[1];
    const hosts = Object.entries(services).filter(([, s]) => s.command?.[0] === 'host');
    const clouds = new Set<string>();
    for (const [name, s] of hosts) {
      const labels = flags(s.command, '--label');
      const cloud = labels.find((l) => l.startsWith('cloud='))?.slice('cloud='.length);
      expect(cloud, `${name}: --label cloud=...`).toMatch(/^(aws|gcp)$/);
      clouds.add(cloud!);
      expect(flag(s.command, '--lattice'), name).toBe('demo');
      const urls = flag(s.command, '--nats')!.split(',');
      expect(urls.length, `${name}: every server of its cloud`).toBe(2);
      for (const url of urls) expect(cloudOf(url), `${name}: ${url} is in its own cloud`).toBe(cloud);
    }
    expect([...clouds].sort()).toEqual(['aws', 'gcp']);

    const gateway = Object.entries(services).find(([, s]) => s.command?.[0] === 'gateway');
    expect(gateway, 'a gateway service').toBeDefined();
    expect(flag(gateway![1].command, '--listen')).toBe('0.0.0.0:8080');
    expect(flag(gateway![1].command, '--lattice')).toBe('demo');
    expect(gateway![1].ports).toContain('8080:8080');
  });

  it('compose - every mounted path, build file and image source exists', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const b of binds(s)) expect(existsSync(b.source), `${name}: ${b.source}`).toBe(true);
      for (const b of binds(s)) if (b.target.startsWith('/etc/')) expect(b.readOnly, `${name}: config mounted read-only`).toBe(true);
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (!source.startsWith('.') && !source.startsWith('/')) expect(compose.volumes, `${name}: named volume ${source} declared`).toHaveProperty(source);
      }
      const build = typeof s.build === 'string' ? { context: s.build } : s.build;
      if (build) {
        const dockerfile = path.resolve(root, build.context ?? '.', build.dockerfile ?? 'Dockerfile');
        expect(existsSync(dockerfile), `${name}: ${dockerfile}`).toBe(true);
        const text = readFileSync(dockerfile, 'utf8');
        expect(text).toMatch(/ENTRYPOINT \["node", "host\/cli\/trellis\.js"\]/);
        // The image builds the compiled CLI, so its commands do not start through tsx.
        expect(text).toMatch(/^RUN node host\/cli\/build-dist\.mjs/m);
        // What the image copies must exist in the build context.
        for (const m of text.matchAll(/^COPY\s+(.+)\s+\S+$/gm)) {
          for (const src of m[1]!.split(/\s+/)) expect(existsSync(path.resolve(root, build.context ?? '.', src)), `${name}: COPY ${src}`).toBe(true);
        }
      }
    }
    // The CLI entry the image runs answers --help with the commands the services use.
    const help = execFileSync(process.execPath, [path.join(root, 'host/cli/trellis.js'), '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/^\s+host /m);
  });
});
