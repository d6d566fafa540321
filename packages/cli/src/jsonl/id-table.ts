/**
 * An exact, compact table of custom_ids, each with a dense index (0, 1, 2, ... in order of first
 * insertion) for parallel arrays of per-id data. Used for duplicate detection (the preflight
 * pass, standard input, `volley embed`) and for what a previous run finished (`--resume`).
 *
 * Ids are stored as UTF-8 (2-byte length prefix) in 1 MiB pages, indexed by an open-addressing
 * table of 32-bit indices at a load of at most 3/4, plus a 32-bit hash and location per id.
 * Measured at 1M ids (Node 20): about 29 bytes per `req-123456`-style id and 56 per UUID,
 * against about 53 and 77 for a `Set<string>` that holds the only reference to each string. Pages
 * never move or double, so there is no copying and at most one partly filled page.
 *
 * Neither exactly-once nor speed rests on hashes being distinct:
 * - Equality is decided on the id's bytes: ids with equal hashes are still told apart.
 * - The hash is keyed with a random key per table (HalfSipHash-2-4 of the id's UTF-8 bytes), so no
 *   one can craft ids that share a probe sequence: probes stay short (a few slots on average)
 *   whatever the input. An unkeyed hash let 65,536 crafted ids make every insertion walk one long
 *   chain (quadratic time).
 */

import { randomBytes } from 'node:crypto';

/** A 32-bit hash of an id. */
export type IdHash = (id: string) => number;

/** Options of {@link createIdTable}. */
export interface IdTableOptions {
  /** Replaces the keyed hash; for tests that need colliding ids. */
  hash?: IdHash | undefined;
}

/** See {@link createIdTable}. */
export interface IdTable {
  /**
   * Adds an id. Returns its new index (>= 0), or, if it was already there, `-(index + 1)` of the
   * existing entry (nothing changes then).
   */
  add(id: string): number;
  /** The index of an id, or -1. */
  indexOf(id: string): number;
  /** Distinct ids stored; indices run from 0 to size - 1. */
  readonly size: number;
  /** Bytes of memory held (pages, table and locations), for diagnostics. */
  readonly bytes: number;
  /** The most slots any one lookup or insertion has visited, for diagnostics and tests. */
  readonly longestProbe: number;
}

/** A keyed 32-bit hash of the bytes `bytes[start, end)`. */
type KeyedByteHash = (bytes: Buffer, start: number, end: number) => number;

/**
 * HalfSipHash-2-4 (Aumasson and Bernstein's SipHash on 32-bit words, the Linux kernel's `hsiphash`
 * for hash tables) under a random 64-bit key: made against hash flooding, as a table needs, not
 * for signatures. It reads the id's bytes where the table has just written them and allocates
 * nothing; SHA-256 of key and id, the hash before it, cost ~0.5 µs and ~150 bytes of garbage per
 * line in the preflight pass (issue 12: a `hash` in the profile of `volley run`).
 */
function keyedByteHash(): KeyedByteHash {
  const key = randomBytes(8);
  const k0 = key.readInt32LE(0);
  const k1 = key.readInt32LE(4);
  return (bytes, start, end) => {
    let v0 = k0;
    let v1 = k1;
    let v2 = 0x6c796765 ^ k0;
    let v3 = 0x74656462 ^ k1;
    const length = end - start;
    const whole = length >>> 2;
    // The last word: the final 0-3 bytes, with the length (mod 256) in the top byte.
    let last = length << 24;
    for (let i = end - 1; i >= start + 4 * whole; i--) {
      last |= (bytes[i] as number) << (8 * (i - start - 4 * whole));
    }
    // Words 0..whole, each mixed in with 2 rounds; then 4 finishing rounds (word whole + 1).
    for (let w = 0; w <= whole + 1; w++) {
      const finishing = w > whole;
      const m = finishing ? 0 : w < whole ? bytes.readInt32LE(start + 4 * w) : last;
      if (finishing) v2 ^= 0xff;
      else v3 ^= m;
      for (let r = finishing ? 4 : 2; r > 0; r--) {
        v0 = (v0 + v1) | 0;
        v1 = rotl(v1, 5) ^ v0;
        v0 = rotl(v0, 16);
        v2 = (v2 + v3) | 0;
        v3 = rotl(v3, 8) ^ v2;
        v0 = (v0 + v3) | 0;
        v3 = rotl(v3, 7) ^ v0;
        v2 = (v2 + v1) | 0;
        v1 = rotl(v1, 13) ^ v2;
        v2 = rotl(v2, 16);
      }
      v0 ^= m;
    }
    return (v1 ^ v3) >>> 0;
  };
}

function rotl(x: number, bits: number): number {
  return (x << bits) | (x >>> (32 - bits));
}

/**
 * Creates an empty table.
 *
 * @example
 * const ids = createIdTable();
 * if (ids.add(request.customId) < 0) report(duplicateCustomIdIssue(line, request.customId));
 */
export function createIdTable(options: IdTableOptions = {}): IdTable {
  const hashOf = options.hash;
  const keyedHash = keyedByteHash();
  const pages: Buffer[] = [Buffer.allocUnsafe(PAGE_BYTES)];
  let page = pages[0] as Buffer;
  let used = 0; // bytes used in the last page
  let capacity = 1024; // table slots, a power of two
  let table = new Uint32Array(capacity); // index + 1; 0 marks an empty slot
  // By index: the id's hash, and where its bytes are (page << PAGE_SHIFT | offset).
  let hashes = new Uint32Array(1024);
  let locations = new Uint32Array(1024);
  let size = 0;
  let longestProbe = 0;

  /** Writes the id's bytes after the used part of the last page; returns their length. */
  const stage = (id: string): number => {
    // UTF-16 to UTF-8 is at most 3 bytes per code unit.
    const worst = 2 + id.length * 3;
    if (worst > PAGE_BYTES) throw new RangeError('id too long for the id table');
    if (used + worst > PAGE_BYTES) {
      if (pages.length >= MAX_PAGES) throw new RangeError('id table is full (4 GiB)');
      page = Buffer.allocUnsafe(PAGE_BYTES);
      pages.push(page);
      used = 0;
    }
    const length = page.write(id, used + 2, 'utf8');
    page.writeUInt16LE(length, used);
    return length;
  };

  /** The hash of the id `stage` has just written (of its bytes, unless a test hook is set). */
  const hashStaged = (id: string, length: number): number =>
    hashOf === undefined ? keyedHash(page, used + 2, used + 2 + length) : hashOf(id) >>> 0;

  /** Slot holding the staged id, or the empty slot where it would go, as `-slot - 1`. */
  const find = (length: number, h: number): number => {
    const start = used + 2;
    let slot = h & (capacity - 1);
    for (let probe = 1; ; probe++) {
      const stored = table[slot] as number;
      if (stored === 0) return settle(probe, -slot - 1);
      if (hashes[stored - 1] === h) {
        const location = locations[stored - 1] as number;
        const other = pages[location >>> PAGE_SHIFT] as Buffer;
        const at = location & (PAGE_BYTES - 1);
        if (
          other.readUInt16LE(at) === length &&
          page.compare(other, at + 2, at + 2 + length, start, start + length) === 0
        ) {
          return settle(probe, slot);
        }
      }
      slot = (slot + 1) & (capacity - 1);
    }
  };
  const settle = (probe: number, result: number): number => {
    if (probe > longestProbe) longestProbe = probe;
    return result;
  };

  const grow = (): void => {
    capacity *= 2;
    table = new Uint32Array(capacity);
    for (let index = 0; index < size; index++) {
      let slot = (hashes[index] as number) & (capacity - 1);
      while (table[slot] !== 0) slot = (slot + 1) & (capacity - 1);
      table[slot] = index + 1;
    }
  };

  return {
    add(id) {
      const length = stage(id);
      const h = hashStaged(id, length);
      const slot = find(length, h);
      if (slot >= 0) return -(table[slot] as number);
      const index = size;
      if (index >= locations.length) {
        hashes = widen(hashes);
        locations = widen(locations);
      }
      hashes[index] = h;
      locations[index] = (pages.length - 1) * PAGE_BYTES + used;
      table[-slot - 1] = index + 1;
      used += 2 + length;
      size++;
      if (size * 4 > capacity * 3) grow();
      return index;
    },
    indexOf(id) {
      const length = stage(id);
      const slot = find(length, hashStaged(id, length));
      return slot < 0 ? -1 : (table[slot] as number) - 1;
    },
    get size() {
      return size;
    },
    get bytes() {
      return (
        pages.length * PAGE_BYTES + table.byteLength + hashes.byteLength + locations.byteLength
      );
    },
    get longestProbe() {
      return longestProbe;
    },
  };
}

function widen(array: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> {
  const bigger = new Uint32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

const PAGE_SHIFT = 20;
const PAGE_BYTES = 1 << PAGE_SHIFT;
// A location is page << 20 | offset in a Uint32: 4095 pages keep it below 2^32.
const MAX_PAGES = 4095;
