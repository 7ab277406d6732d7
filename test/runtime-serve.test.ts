import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildExampleActors } from '../actors/index.ts';
import { serveComponent } from '../host/runtime/index.ts';
import { TrellisError } from '../lattice/errors/index.ts';

const cacheDir = join(tmpdir(), 'trellis-runtime-test-cache');
let paths: Awaited<ReturnType<typeof buildExampleActors>>;

beforeAll(async () => {
  paths = await buildExampleActors();
});

describe('runtime serve', () => {
  it('runtime serve - a wasi:http/proxy component serves real HTTP requests', async () => {
    const server = await serveComponent({ path: paths['http-js'], listen: '127.0.0.1:0', cacheDir });
    try {
      const root = await fetch(`${server.url}/`);
      expect(root.status).toBe(200);
      expect(root.headers.get('content-type')).toBe('text/plain');
      expect(await root.text()).toBe('hello from wasi:http\n');
      for (const n of [1, 2]) {
        const echo = await fetch(`${server.url}/echo?n=${n}`, { method: 'PUT', body: `payload ${n}`, headers: { 'x-custom': 'v' } });
        expect(echo.status).toBe(200);
        const seen = (await echo.json()) as { headers: [string, string][] };
        expect(seen).toMatchObject({ method: 'PUT', path: '/echo', query: `n=${n}`, body: `payload ${n}` });
        expect(seen.headers).toContainEqual(['x-custom', 'v']);
      }
      expect((await fetch(`${server.url}/missing`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('runtime serve - a trellis:actor component maps HTTP to its request and back', async () => {
    const server = await serveComponent({ path: paths.hello, listen: '127.0.0.1:0', cacheDir });
    try {
      const q = await fetch(`${server.url}/greet?name=grace`);
      expect(q.status).toBe(200);
      expect(q.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(await q.text()).toBe('hello, grace');
      const body = await fetch(`${server.url}/`, { method: 'POST', body: 'linus' });
      expect(await body.text()).toBe('hello, linus');
    } finally {
      await server.close();
    }
  });

  it('runtime serve - failures answer their HTTP status with a JSON error body', async () => {
    const server = await serveComponent({ path: paths['hostile-c'], listen: '127.0.0.1:0', cacheDir, policy: { executionTimeoutMs: 200 } });
    try {
      const trap = await fetch(`${server.url}/trap`);
      expect(trap.status).toBe(502);
      expect(await trap.json()).toMatchObject({ error: { code: 'TRELLIS_WASM_TRAP', message: expect.stringMatching(/^wasm trap: /) } });
      const loop = await fetch(`${server.url}/loop`);
      expect(loop.status).toBe(504);
      // The same error body as the gateway's: code, message, and what the user can do about it.
      expect(await loop.json()).toEqual({ error: { code: 'TRELLIS_TIME_LIMIT', message: 'time limit exceeded', hint: new TrellisError('TRELLIS_TIME_LIMIT', '').hint } });
      expect(await (await fetch(`${server.url}/ok`)).text()).toBe('ok');
    } finally {
      await server.close();
    }
  });

  it('runtime serve - a file that is not a component fails to start', async () => {
    await expect(serveComponent({ path: join(paths.hello, '..', 'hello.key'), listen: '127.0.0.1:0', cacheDir })).rejects.toMatchObject({
      code: 'TRELLIS_LOAD_FAILED',
    });
  });
});
