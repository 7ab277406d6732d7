import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { componentWit, metadataShow, transpile } from '@bytecodealliance/jco';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildActor, buildExampleActors, exampleActorNames, type ExampleActorName } from '../actors/index.ts';
import { TrellisError } from '../lattice/errors/index.ts';

const expectedExport: Record<ExampleActorName, string> = {
  hello: 'trellis:actor/handler@0.1.0',
  counter: 'trellis:actor/handler@0.1.0',
  'echo-c': 'trellis:actor/handler@0.1.0',
  'http-js': 'wasi:http/incoming-handler@0.2',
  'hostile-js': 'trellis:actor/handler@0.1.0',
  'hostile-c': 'trellis:actor/handler@0.1.0',
  'flaky-c': 'trellis:actor/handler@0.1.0',
  'slow-c': 'trellis:actor/handler@0.1.0',
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Handler {
  handle(req: { method: string; path: string; query: string; headers: [string, string][]; body: Uint8Array }): {
    status: number;
    headers: [string, string][];
    body: Uint8Array;
  };
}

// tsconfig has no DOM lib, and @types/node declares WebAssembly only as a type namespace.
const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<unknown> } }).WebAssembly;

/** Instantiate a trellis:actor component with jco, supplying `imports` (keys without versions). */
async function instantiate(component: string, dir: string, imports: Record<string, object>): Promise<Handler> {
  const { files } = await transpile(await readFile(component), { name: 'actor', instantiation: 'async', noTypescript: true, quiet: true });
  for (const [file, data] of Object.entries(files)) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFile(join(dir, file), data);
  }
  const mod = (await import(pathToFileURL(join(dir, 'actor.js')).href)) as {
    instantiate(core: (path: string) => Promise<unknown>, imports: Record<string, object>): Promise<Record<string, Handler>>;
  };
  const exports = await mod.instantiate(async (path) => wasm.compile(await readFile(join(dir, path))), imports);
  const handler = exports['trellis:actor/handler@0.1.0'] ?? exports.handler;
  if (!handler) throw new Error(`no handler export in ${component}`);
  return handler;
}

const call = (over: Partial<Parameters<Handler['handle']>[0]> = {}) => ({
  method: 'CALL',
  path: '/',
  query: '',
  headers: [] as [string, string][],
  body: new Uint8Array(),
  ...over,
});

describe('actors build', () => {
  let built: Record<ExampleActorName, string>;
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'trellis-actors-test-'));
    built = await buildExampleActors();
  }, 240_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('actors build - every example is a component with the expected export', async () => {
    expect(Object.keys(built).sort()).toEqual([...exampleActorNames].sort());
    for (const name of exampleActorNames) {
      const bytes = await readFile(built[name]);
      const [top] = await metadataShow(bytes);
      expect(top?.metaType.tag, name).toBe('component');
      expect(await componentWit(bytes), name).toContain(`export ${expectedExport[name]}`);
    }
  }, 30_000);

  it('actors build - a second build reuses the cache', async () => {
    const before = await stat(built.hello);
    const started = performance.now();
    const lines: string[] = [];
    await buildExampleActors({ log: (line) => lines.push(line) });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect((await stat(built.hello)).mtimeMs).toBe(before.mtimeMs);
    expect(lines).toHaveLength(Object.keys(built).length);
    expect(lines.every((line) => line.includes('cached'))).toBe(true);
  }, 30_000);

  it('actors build - echo-c answers 200 with the request body', async () => {
    const echo = await instantiate(built['echo-c'], join(scratch, 'echo'), { 'trellis:actor/types': {} });
    const small = echo.handle(call({ path: '/x', headers: [['a', 'b']], body: encoder.encode('ping') }));
    expect(small.status).toBe(200);
    expect(decoder.decode(small.body)).toBe('ping');
    const big = new Uint8Array(1_000_000);
    for (let i = 0; i < big.length; i++) big[i] = i & 255;
    // Compared with Buffer.equals: a deep toEqual over a million elements takes seconds.
    expect(Buffer.from(echo.handle(call({ body: big })).body).equals(big)).toBe(true);
    expect(echo.handle(call()).body.length).toBe(0);
  }, 30_000);

  it('actors build - hello greets by query or body and logs', async () => {
    const logs: [string, string][] = [];
    const unused = () => {
      throw new Error('not linked');
    };
    const hello = await instantiate(built.hello, join(scratch, 'hello'), {
      'trellis:actor/logging': { log: (level: string, message: string) => logs.push([level, message]) },
      'trellis:actor/keyvalue': { get: unused, set: unused, delete: unused, exists: unused, keys: unused, increment: unused },
      'trellis:actor/http-client': { send: unused },
      'trellis:actor/actors': { call: unused },
      'trellis:actor/config': { getEnv: unused },
      'trellis:actor/types': {},
    });
    expect(decoder.decode(hello.handle(call({ query: 'name=ada' })).body)).toBe('hello, ada');
    expect(decoder.decode(hello.handle(call({ body: encoder.encode('bob') })).body)).toBe('hello, bob');
    expect(logs).toEqual([
      ['info', 'greeting ada'],
      ['info', 'greeting bob'],
    ]);
  }, 30_000);

  it('actors build - a TypeScript entry with relative imports builds', async () => {
    const dir = join(scratch, 'ts');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'greeting.ts'), `export const greeting = (name: string): string => \`hi \${name}\`;\n`);
    await writeFile(
      join(dir, 'actor.ts'),
      [
        `import { greeting } from './greeting.ts';`,
        `interface Req { body: Uint8Array }`,
        `export const handler = {`,
        `  handle(req: Req) {`,
        `    return { status: 200, headers: [], body: new TextEncoder().encode(greeting(new TextDecoder().decode(req.body))) };`,
        `  },`,
        `};`,
      ].join('\n'),
    );
    const result = await buildActor({ entry: join(dir, 'actor.ts'), out: join(dir, 'actor.wasm') });
    expect(result.bytes).toBeGreaterThan(0);
    expect(await componentWit(await readFile(result.out))).toContain('export trellis:actor/handler@0.1.0');
  }, 120_000);

  it('actors build - a missing entry fails with TRELLIS_BAD_REQUEST', async () => {
    const failure = buildActor({ entry: join(scratch, 'nope.ts'), out: join(scratch, 'nope.wasm') });
    await expect(failure).rejects.toBeInstanceOf(TrellisError);
    await expect(failure).rejects.toMatchObject({ code: 'TRELLIS_BAD_REQUEST', message: expect.stringContaining('no such file') });
  });

  it('actors build - a syntax error fails with TRELLIS_BAD_REQUEST naming the line', async () => {
    const entry = join(scratch, 'broken.js');
    await writeFile(entry, 'export const handler = {\n  handle(req) { return {\n};\n');
    await expect(buildActor({ entry, out: join(scratch, 'broken.wasm') })).rejects.toMatchObject({
      code: 'TRELLIS_BAD_REQUEST',
      message: expect.stringMatching(/broken\.js:\d+:\d+/),
    });
  });

  it('actors build - a C compile error fails with TRELLIS_BAD_REQUEST', async () => {
    const entry = join(scratch, 'broken.c');
    await writeFile(entry, 'int main( {\n');
    await expect(buildActor({ entry, out: join(scratch, 'broken-c.wasm') })).rejects.toMatchObject({
      code: 'TRELLIS_BAD_REQUEST',
      message: expect.stringContaining('clang failed'),
    });
  });

  it('actors build - an unsupported entry type fails with TRELLIS_BAD_REQUEST', async () => {
    await expect(buildActor({ entry: 'actor.py', out: join(scratch, 'py.wasm') })).rejects.toMatchObject({
      code: 'TRELLIS_BAD_REQUEST',
    });
  });
});
