// The smallest useful Trellis actor: greets the caller and logs through the host. With
// `?via=<actor>` it first asks that actor (through the lattice, like any invocation) and greets
// whatever it answered, which shows actor-to-actor calls.
import { call } from 'trellis:actor/actors@0.1.0';
import { log } from 'trellis:actor/logging@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Name from `?name=`, else the body text, else "world". */
function nameOf(req) {
  const fromQuery = new URLSearchParams(req.query).get('name');
  if (fromQuery) return fromQuery;
  const fromBody = decoder.decode(req.body).trim();
  return fromBody || 'world';
}

export const handler = {
  handle(req) {
    let name = nameOf(req);
    const via = new URLSearchParams(req.query).get('via');
    if (via) {
      // `call` throws the callee's "<CODE>: <message>" when it fails; the host reports it.
      const answer = call(via, { method: 'CALL', path: '/', query: '', headers: [], body: encoder.encode(name) });
      name = decoder.decode(answer.body);
    }
    log('info', `greeting ${name}`);
    return {
      status: 200,
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: encoder.encode(`hello, ${name}`),
    };
  },
};
