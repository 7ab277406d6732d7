/** Where the gateway finds a request's sticky key: pure helpers, tested beside. */
import type { IncomingHttpHeaders } from 'node:http';
import { cookieValue } from '../../lattice/canary/sticky.ts';
import type { Sticky } from '../../lattice/weights/index.ts';

/** Longest key used; longer values are cut (the bucket of a key is all that matters). */
const MAX_KEY = 256;

/** The sticky key of a request per the actor's sticky setting; undefined when it carries none. */
export function stickyKeyOf(headers: IncomingHttpHeaders, sticky: Sticky): string | undefined {
  let key: string | undefined;
  if (sticky.header !== undefined) {
    const value = headers[sticky.header];
    key = Array.isArray(value) ? value[0] : value;
  }
  // The cookie when there is no header setting, or the request lacks the header.
  if (!key && sticky.cookie !== undefined) key = cookieValue(headers.cookie, sticky.cookie);
  if (!key) return undefined;
  return key.length > MAX_KEY ? key.slice(0, MAX_KEY) : key;
}
