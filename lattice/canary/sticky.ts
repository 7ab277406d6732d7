/**
 * Sticky keys: a key hashes to a fixed bucket in [0, 100); it goes to the canary while its bucket
 * is below the canary's weight. As the weight grows the set of canary buckets only grows, so a
 * key that reached the canary stays there.
 *
 * PLACEHOLDER written by K2 before K1's version existed; K1's file replaces it on merge.
 */

/** FNV-1a (32 bit) of the key's UTF-16 code units, mod 100: stable across processes and versions. */
export function stickyBucket(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % 100;
}

/** Whether the key goes to the canary at `canaryWeight` percent. */
export function stickyToCanary(key: string, canaryWeight: number): boolean {
  return stickyBucket(key) < canaryWeight;
}
