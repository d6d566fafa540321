/**
 * Custom_ids that collide under the unkeyed hashes Volley once used, built the way an attacker
 * would: a Joux multicollision on 32-bit FNV-1a (16 rounds of a birthday search, each about 2^16
 * hashes, give 2^16 ids with one hash), then a birthday search on the second 32-bit lane of the
 * old 64-bit `hashPair` among 2^17 such ids. Well under a second of CPU.
 */

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
const FNV_BASIS = 0x811c9dc5;

/** 32-bit FNV-1a over UTF-16 code units (equal to bytes for the ASCII ids made here). */
function fnvStep(state: number, block: string): number {
  let h = state;
  for (let i = 0; i < block.length; i++) h = Math.imul(h ^ block.charCodeAt(i), 0x01000193);
  return h;
}

/** Deterministic pseudo-random blocks, so every run builds the same ids. */
function blocks(seed: number): () => string {
  let x = seed >>> 0 || 1;
  return () => {
    let block = '';
    for (let i = 0; i < 5; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      block += ALPHABET[(x >>> 0) & 63];
    }
    return block;
  };
}

/** `rounds` pairs of 5-character blocks; choosing one of each pair gives 2^rounds ids with one FNV-1a hash. */
function jouxPairs(rounds: number, prefix: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let state = fnvStep(FNV_BASIS, prefix);
  const next = blocks(0x9e3779b9);
  for (let round = 0; round < rounds; round++) {
    const seen = new Map<number, string>();
    for (;;) {
      const block = next();
      const after = fnvStep(state, block) >>> 0;
      const other = seen.get(after);
      if (other !== undefined && other !== block) {
        pairs.push([other, block]);
        state = after;
        break;
      }
      seen.set(after, block);
    }
  }
  return pairs;
}

/** Every id made of `prefix` and one block of each pair, in order. */
function expand(prefix: string, pairs: Array<[string, string]>): string[] {
  let ids = [prefix];
  for (const pair of pairs) ids = ids.flatMap((id) => [id + pair[0], id + pair[1]]);
  return ids;
}

/** `count` (a power of two) distinct ids with one 32-bit FNV-1a hash (the old duplicate tracker's). */
export function fnvCollidingIds(count: number, prefix = 'req-'): string[] {
  return expand(prefix, jouxPairs(Math.log2(count), prefix));
}

/** The old `hashPair` of finished-set.ts, kept here to find its collisions. */
export function oldHashPair(text: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a ^= a >>> 16;
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b ^= b >>> 16;
  return [a >>> 0, b >>> 0 || 1];
}

/** Two distinct ids with the same 64-bit old `hashPair`. */
export function hashPairCollision(prefix = 'req-'): [string, string] {
  for (let rounds = 17; rounds <= 20; rounds++) {
    const seen = new Map<number, string>();
    for (const id of fnvCollidingIds(2 ** rounds, prefix)) {
      const [, b] = oldHashPair(id);
      const other = seen.get(b);
      if (other !== undefined) return [other, id];
      seen.set(b, id);
    }
  }
  throw new Error('no collision found');
}
