/**
 * The compiled CLI (dist/): the bin runs it when it is current and the TypeScript sources when it
 * is not, it loads no dependency for `--help`, and a host started from it answers `get hosts`
 * and runs an actor (on the prebuilt worker). Each test works on a copy of the package in a temp
 * folder, so editing a source there cannot disturb other suites running the real bin.
 */
import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleActor, spawnTrellis, startNats, uniqueLattice, type NatsServer } from './harness/index.ts';

const exec = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));
const HEADLINE = 'trellis: a distributed runtime';

// Records every module the loader resolves, in a file, from the loader's own thread.
const TRACE_HOOKS = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.TRACE_FILE, result.url + '\\n');
  return result;
}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** URLs of the modules loaded. */
  loaded: string[];
}

describe('dist: the compiled CLI', () => {
  let root: string;
  let bin: string;
  let runs = 0;

  /** Run the copy's bin with the module trace on. */
  async function trellis(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
    const trace = path.join(root, `trace-${runs++}.txt`);
    await writeFile(trace, '');
    const nodeArgs = ['--import', `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(`file://${root}/trace-hooks.mjs`)})`];
    let result: Omit<Run, 'loaded'>;
    try {
      const { stdout, stderr } = await exec(process.execPath, [...nodeArgs, bin, ...args], { env: { ...process.env, TRACE_FILE: trace, ...env }, timeout: 60_000 });
      result = { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      result = { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
    return { ...result, loaded: (await readFile(trace, 'utf8')).split('\n').filter(Boolean) };
  }
  const ranFromDist = (run: Run) => run.loaded.some((u) => u.endsWith('/dist/cli.js')) && !run.loaded.some((u) => u.endsWith('/host/cli/index.ts'));
  const ranFromSources = (run: Run) => run.loaded.some((u) => u.endsWith('/host/cli/index.ts')) && !run.loaded.some((u) => u.endsWith('/dist/cli.js'));
  /** The files the given dist/ outputs were built from, read from their source maps. */
  const sourcesOf = async (urls: string[]) =>
    (await Promise.all(urls.map(async (u) => (JSON.parse(await readFile(`${fileURLToPath(u)}.map`, 'utf8')) as { sources: string[] }).sources))).flat();
  const build = () => exec(process.execPath, [path.join(root, 'host/cli/build-dist.mjs')], { cwd: root, timeout: 120_000 });

  beforeAll(async () => {
    root = realpathSync(await mkdtemp(path.join(os.tmpdir(), 'trellis-dist-')));
    for (const entry of ['package.json', 'tsconfig.json', 'host', 'lattice', 'providers', 'actors']) {
      await cp(path.join(repo, entry), path.join(root, entry), { recursive: true });
    }
    await symlink(realpathSync(path.join(repo, 'node_modules')), path.join(root, 'node_modules'));
    await writeFile(path.join(root, 'trace-hooks.mjs'), TRACE_HOOKS);
    bin = path.join(root, 'host/cli/trellis.js');
    await build();
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('dist - --help runs from dist/ and loads no dependency, exit codes as before', async () => {
    const help = await trellis(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(HEADLINE);
    expect(ranFromDist(help)).toBe(true);
    // Neither a package from node_modules nor a chunk with one inlined (nats.js, msgpackr): each
    // output's source map lists the files it was built from.
    expect(help.loaded.filter((u) => u.includes('/node_modules/'))).toEqual([]);
    const chunks = help.loaded.filter((u) => u.includes('/dist/'));
    expect(chunks.length).toBeGreaterThan(1);
    const helpSources = await sourcesOf(chunks);
    expect(helpSources).toContain('../lattice/cli/index.ts');
    expect(helpSources.filter((s) => s.includes('node_modules/'))).toEqual([]);
    // While `get hosts` does load nats.js (inlined): the check above can tell.
    const natsLoaded = await trellis(['get', 'hosts', '--nats', 'nats://127.0.0.1:1']);
    expect(natsLoaded.stderr).toContain('TRELLIS_NATS_UNAVAILABLE');
    const natsSources = await sourcesOf(natsLoaded.loaded.filter((u) => u.includes('/dist/')));
    expect(natsSources.some((s) => s.includes('node_modules/nats/'))).toBe(true);
    const unknown = await trellis(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('TRELLIS_UNKNOWN_COMMAND');
    expect(ranFromDist(unknown)).toBe(true);
  });

  it('dist - trellis build runs its component step on the prebuilt build worker', async () => {
    const out = path.join(root, 'echo.wasm');
    const built = await trellis(['build', path.join(root, 'actors/echo-c/echo.c'), '--out', out, '--json']);
    expect(built.code, built.stderr).toBe(0);
    expect(ranFromDist(built)).toBe(true);
    expect(JSON.parse(built.stdout)).toMatchObject({ out });
    // A component, not a core module: the wasm magic, then the component-model layer (0x0d 0x00 0x01 0x00).
    expect([...(await readFile(out)).subarray(0, 8)]).toEqual([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);
  });

  describe('against a real nats-server and a host started from dist/', () => {
    let nats: NatsServer;
    const lattice = uniqueLattice('dist');
    const env = () => ({ TRELLIS_NATS_URL: nats.url, TRELLIS_LATTICE: lattice });

    beforeAll(async () => {
      nats = await startNats();
    });
    afterAll(async () => {
      await nats?.stop();
    });

    it('dist - get hosts --json lists the host; an actor runs on the prebuilt worker', async () => {
      await using host = await spawnTrellis(['host', '--nats', nats.url, '--lattice', lattice, '--name', 'from-dist'], 'host started', {}, bin);
      const hosts = await trellis(['get', 'hosts', '--json'], env());
      expect(hosts.code).toBe(0);
      expect(ranFromDist(hosts)).toBe(true);
      expect(JSON.parse(hosts.stdout)).toMatchObject([{ id: host.ready.hostId, name: 'from-dist', version: JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')).version }]);

      const started = await trellis(['start', 'actor', exampleActor('echo-c'), '--name', 'echo', '--version', '1.0.0', '--host', 'from-dist', '--json'], env());
      expect(started.code, started.stderr).toBe(0);
      const invoked = await trellis(['invoke', 'echo', '--data', 'compiled', '--json'], env());
      expect(JSON.parse(invoked.stdout)).toMatchObject({ actor: 'echo', response: { status: 200, body: 'compiled' } });
    });
  });

  it('dist - trellis up runs nats-server and a host from dist/, and stops on Ctrl-C', async () => {
    const dataDir = path.join(root, 'up-data');
    const up = spawn(process.execPath, [bin, 'up', '--bare', '--port', '0', '--gateway', '127.0.0.1:0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    try {
      let output = '';
      await new Promise<void>((resolve, reject) => {
        up.stdout.setEncoding('utf8').on('data', (d: string) => {
          output += d;
          if (output.includes('Ctrl-C stops')) resolve();
        });
        up.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
        void exited.then((code) => reject(new Error(`trellis up exited with ${code}: ${output}`)));
      });
      // nats-server picked its own port (`--port 0`); up prints where it runs.
      const natsUrl = /^nats-server\s+(nats:\/\/\S+)/m.exec(output)![1]!;
      const hosts = await trellis(['get', 'hosts', '--json', '--nats', natsUrl]);
      expect(ranFromDist(hosts)).toBe(true);
      expect(JSON.parse(hosts.stdout)).toHaveLength(1);
      // The host's identity is kept in the data dir (created with nats.js's nkeys, imported lazily).
      expect((await readFile(path.join(dataDir, 'host.seed'), 'utf8')).trim()).toMatch(/^SN[A-Z2-7]+$/);
      up.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      up.kill('SIGKILL');
    }
  });

  it('dist - a source edited after the build runs from sources until dist/ is rebuilt', async () => {
    const file = path.join(root, 'lattice/cli/index.ts');
    const source = await readFile(file, 'utf8');
    expect(source).toContain(HEADLINE);
    await writeFile(file, source.replace(HEADLINE, 'trellis (edited): a distributed runtime'));
    const stale = await trellis(['--help']);
    expect(stale.code).toBe(0);
    expect(stale.stdout).toContain('trellis (edited)');
    expect(ranFromSources(stale)).toBe(true);
    // The exit code comes through the source path too.
    const unknown = await trellis(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(ranFromSources(unknown)).toBe(true);

    await build();
    const rebuilt = await trellis(['--help']);
    expect(rebuilt.stdout).toContain('trellis (edited)');
    expect(ranFromDist(rebuilt)).toBe(true);
    // TRELLIS_FROM_SOURCE=1 picks the sources even when dist/ is current.
    expect(ranFromSources(await trellis(['--help'], { TRELLIS_FROM_SOURCE: '1' }))).toBe(true);
  });
});
