/** Where the gateway finds a request's sticky key: pure helpers, tested beside. */
import type { IncomingHttpHeaders } from 'node:http';
import type { Sticky } from '../../lattice/weights/index.ts';

/** Longest key used; longer values are cut (the bucket of a key is all that matters). */
const MAX_KEY = 256;

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}

/** The sticky key of a request per the actor's sticky setting; undefined when it carries none. */
export function stickyKeyOf(headers: IncomingHttpHeaders, sticky: Sticky): string | undefined {
  let key: string | undefined;
  if (sticky.header !== undefined) {
    const value = headers[sticky.header];
    key = Array.isArray(value) ? value[0] : value;
  } else if (sticky.cookie !== undefined) {
    key = cookieValue(headers.cookie, sticky.cookie);
  }
  if (!key) return undefined;
  return key.length > MAX_KEY ? key.slice(0, MAX_KEY) : key;
}
