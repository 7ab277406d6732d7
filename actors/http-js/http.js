// A plain wasi:http/proxy component: it runs unmodified on any wasi:http host (wasmtime serve,
// Spin, wasmCloud) and on Trellis. It exports `wasi:http/incoming-handler` explicitly rather
// than using StarlingMonkey's `fetch` event, because a fetch-event component cannot serve a
// second request on the same instance (bytecodealliance/StarlingMonkey#247) and Trellis pools
// instances.
//
//   GET /      -> 200 text/plain "hello from wasi:http\n"
//   ANY /echo  -> 200 application/json {method, path, query, headers (sorted), body}
//   otherwise  -> 404 text/plain "not found\n"
import { Fields, IncomingBody, OutgoingBody, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.10';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// wasi:io output streams accept at most 4096 bytes per blocking write.
const WRITE_CHUNK = 4096;

function methodName(method) {
  return method.tag === 'other' ? method.val : method.tag.toUpperCase();
}

function readBody(request) {
  const body = request.consume();
  const stream = body.stream();
  const chunks = [];
  for (;;) {
    try {
      chunks.push(stream.blockingRead(65536n));
    } catch (e) {
      if (e?.payload?.tag === 'closed' || e?.tag === 'closed') break;
      throw e;
    }
  }
  stream[Symbol.dispose]();
  IncomingBody.finish(body)[Symbol.dispose]();
  return decoder.decode(concat(chunks));
}

function concat(chunks) {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

function respond(responseOut, status, contentType, text) {
  const response = new OutgoingResponse(Fields.fromList([['content-type', encoder.encode(contentType)]]));
  response.setStatusCode(status);
  const body = response.body();
  ResponseOutparam.set(responseOut, { tag: 'ok', val: response });
  const stream = body.write();
  const bytes = encoder.encode(text);
  for (let at = 0; at < bytes.length; at += WRITE_CHUNK) {
    stream.blockingWriteAndFlush(bytes.subarray(at, at + WRITE_CHUNK));
  }
  stream[Symbol.dispose]();
  OutgoingBody.finish(body, undefined);
}

/** Stable JSON of what the handler saw, so tests can compare it byte for byte. */
function echo(request) {
  const [path, query = ''] = (request.pathWithQuery() ?? '/').split(/\?(.*)/s);
  const headers = request
    .headers()
    .entries()
    .map(([name, value]) => [name, decoder.decode(value)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const method = methodName(request.method());
  return JSON.stringify({ method, path, query, headers, body: readBody(request) });
}

export const incomingHandler = {
  handle(request, responseOut) {
    const path = (request.pathWithQuery() ?? '/').split('?')[0];
    if (path === '/') return respond(responseOut, 200, 'text/plain', 'hello from wasi:http\n');
    if (path === '/echo') return respond(responseOut, 200, 'application/json', echo(request));
    return respond(responseOut, 404, 'text/plain', 'not found\n');
  },
};
