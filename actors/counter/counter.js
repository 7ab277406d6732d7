// A key-value counter for the HTTP gateway demo: POST increments, GET reads. The counter name
// comes from `?key=` so one actor serves many counters; the bucket is set by the actor's link.
import { get, increment } from 'trellis:actor/keyvalue@0.1.0';
import { log } from 'trellis:actor/logging@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function reply(status, text) {
  return { status, headers: [['content-type', 'text/plain; charset=utf-8']], body: encoder.encode(text) };
}

export const handler = {
  handle(req) {
    const key = new URLSearchParams(req.query).get('key') || 'counter';
    if (req.method === 'GET') {
      const stored = get(key);
      return reply(200, stored === undefined ? '0' : decoder.decode(stored));
    }
    const value = increment(key, 1n);
    log('debug', `counter ${key} is now ${value}`);
    return reply(200, String(value));
  },
};
