/**
 * Sticky keys: a request carrying a key (a header or a cookie, the canary's `stickyHeader` or
 * `stickyCookie`) hashes to a bucket in [0, 100) and goes to the canary when its bucket is
 * below the canary's weight. The same key always lands in the same bucket on every caller of
 * the lattice, with no shared state, so while the split holds a key stays on one version, and
 * as the weight grows (10 → 30 → 50 → 100) a key that reached the canary stays there: its
 * bucket stays below every larger weight. This is the consistent split Flagger and Argo
 * Rollouts get from a mesh's session affinity, without a mesh.
 */
import { compareVersions } from '../versions/index.ts';

const encoder = new TextEncoder();

/**
 * The bucket of a key, an integer in [0, 100). FNV-1a (32 bit) over the key's UTF-8 bytes,
 * then murmur3's finalizer so similar keys ("user-1", "user-2") spread over all buckets, then
 * the high bits scaled to 100 (no modulo bias worth the name). Stable across processes,
 * platforms and releases: changing it would move keys between versions mid-rollout.
 */
export function stickyBucket(key: string): number {
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(key)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.floor(((h >>> 0) * 100) / 0x1_0000_0000);
}

/** The canary rule for two versions: canary when the key's bucket is below the canary's weight. */
export function stickyToCanary(key: string, canaryWeight: number): boolean {
  return stickyBucket(key) < canaryWeight;
}

/**
 * The version for a bucket under any weights: the canary (`first`) owns buckets [0, its
 * weight), the others follow in a fixed order (highest version first) over the rest. With a
 * stable and a canary this is exactly `stickyToCanary`. Undefined when no version has weight.
 */
export function stickyChoice(bucket: number, weights: Readonly<Record<string, number>>, first?: string): string | undefined {
  const order = Object.keys(weights)
    .filter((v) => v !== first && weights[v]! > 0)
    .sort((a, b) => compareVersions(b, a) || (a < b ? -1 : a > b ? 1 : 0));
  if (first !== undefined && (weights[first] ?? 0) > 0) order.unshift(first);
  let upTo = 0;
  for (const version of order) {
    upTo += weights[version]!;
    if (bucket < upTo) return version;
  }
  // Weights that sum to less than 100 (never valid, but a caller must not fail): the last owner.
  return order.at(-1);
}

/** The value of cookie `name` in a Cookie header (RFC 6265 §5.4 syntax), undefined when absent. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  }
  return undefined;
}
