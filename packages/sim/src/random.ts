/**
 * Hashing and a seeded PRNG. Content, embeddings, faults and jitter all derive from these, so the
 * same input always gives the same bytes on every machine (no Math.random anywhere in the sim).
 */

/** The FNV-1a 32-bit offset basis: the starting state for {@link hashString}. */
export const HASH_SEED = 0x811c9dc5;

/**
 * Continues an FNV-1a hash over `text` and a trailing separator, so ('ab','c') and ('a','bc')
 * hash differently. Hashing parts in sequence avoids building one concatenated key string.
 */
export function hashString(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return Math.imul(h ^ 0xff, 0x01000193) >>> 0;
}

/**
 * Mixes two 32-bit values into a well-spread 32-bit seed (murmur3's finalizer). FNV alone leaves
 * nearby inputs (choice 0 and 1, request 7 and 8) with correlated low bits.
 */
export function mix(a: number, b: number): number {
  let h = (a ^ Math.imul(b, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A PRNG returning floats in [0, 1). */
export type Random = () => number;

/** mulberry32: tiny, fast and good enough for picking words and faults (not for cryptography). */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal sample (Box-Muller); `1 - random()` keeps the logarithm finite. */
export function normalSample(random: Random): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
