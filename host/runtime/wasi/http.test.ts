/** wasi:http outgoing requests, called the way jco's bindings call them, against a recording host. */
import { describe, expect, it } from 'vitest';
import { wasiImports, type OutgoingHttp } from './index.ts';

type Ctor = new (...args: any[]) => any;

function sandbox(allowedHosts: string[]) {
  const sent: OutgoingHttp[] = [];
  const violations: string[] = [];
  const imports = wasiImports(
    { actor: 'http-test', env: [], allowedEnvVars: [], allowedHosts, dirs: [] },
    {
      violation: (m) => void violations.push(m),
      output: () => {},
      httpSend: (req) => {
        sent.push(req);
        return { status: 201, headers: [['x-upstream', 'yes']], body: new TextEncoder().encode('made') };
      },
    },
  );
  const types = imports['wasi:http/types'] as Record<string, Ctor & Record<string, any>>;
  const handle = (imports['wasi:http/outgoing-handler'] as { handle: (req: unknown) => any }).handle;
  return { types, handle, sent, violations };
}

describe('wasi http', () => {
  it('wasi http - an outgoing request to an allowed host carries its method, url, headers and body', () => {
    const { types, handle, sent, violations } = sandbox(['api.allowed.test']);
    const headers = types.Fields!.fromList([['Content-Type', new TextEncoder().encode('text/plain')]]);
    const req = new types.OutgoingRequest!(headers);
    // Headers given to a request are frozen: the guest cannot change them afterwards.
    expect(() => req.headers().append('x-late', new Uint8Array())).toThrow();
    req.setMethod({ tag: 'post' });
    req.setScheme({ tag: 'HTTPS' });
    req.setAuthority('api.allowed.test');
    req.setPathWithQuery('/things?x=1');
    const body = req.body();
    expect(() => req.body()).toThrow();
    body.write().blockingWriteAndFlush(new TextEncoder().encode('payload'));
    types.OutgoingBody!.finish(body);

    const future = handle(req);
    expect(future.get()).toBeUndefined();
    future.subscribe().block();
    const result = future.get();
    expect(result.tag).toBe('ok');
    const res = result.val.val;
    expect(res.status()).toBe(201);
    expect(new TextDecoder().decode(res.consume().stream().blockingRead(100n))).toBe('made');
    // A response is taken once.
    expect(future.get()).toEqual({ tag: 'err', val: undefined });

    expect(sent).toHaveLength(1);
    expect(sent[0]!.method).toBe('POST');
    expect(sent[0]!.url).toBe('https://api.allowed.test/things?x=1');
    expect(sent[0]!.headers).toEqual([['content-type', 'text/plain']]);
    expect(new TextDecoder().decode(sent[0]!.body)).toBe('payload');
    expect(violations).toEqual([]);
  });

  it('wasi http - a host outside allowedHosts is denied before anything is sent', () => {
    const { types, handle, sent, violations } = sandbox(['api.allowed.test']);
    const req = new types.OutgoingRequest!(new types.Fields!());
    req.setAuthority('evil.example.com');
    req.setPathWithQuery('/');
    let thrown: unknown;
    try {
      handle(req);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toEqual({ tag: 'HTTP-request-denied' });
    expect(violations).toEqual(['host not allowed: evil.example.com']);
    expect(sent).toEqual([]);
  });

  it('wasi http - an outgoing response keeps its status and headers frozen', () => {
    const { types } = sandbox([]);
    const res = new types.OutgoingResponse!(new types.Fields!());
    expect(res.statusCode()).toBe(200);
    res.setStatusCode(404);
    expect(res.statusCode()).toBe(404);
    expect(() => res.setStatusCode(42)).toThrow();
    expect(() => res.headers().set('x', [])).toThrow();
    res.body();
    expect(() => res.body()).toThrow();
  });
});
