// The smallest useful Trellis actor: greets the caller and logs through the host.
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
    const name = nameOf(req);
    log('info', `greeting ${name}`);
    return {
      status: 200,
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: encoder.encode(`hello, ${name}`),
    };
  },
};
