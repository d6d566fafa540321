/**
 * The set of lines a previous run already finished, built on `--resume` from the records in the
 * output files, and consulted for every input line.
 *
 * A `Map<string, string>` of custom_id to record id costs about 150 bytes an entry in V8 (150 MB
 * for a million lines). Here an entry is 17 bytes in typed arrays, at a load of at most 3/4: a
 * 64-bit hash of the custom_id (two independent 32-bit hashes; a false match needs both to
 * collide, about 1 in 10^7 even among a million ids, and would only make one record be kept), the
 * first 64 bits of the record id (which encodes the request, see record.ts), and a flag byte.
 */

/** What a record in the outputs says about a line. */
export const RecordKind = {
  /** A success in the results file. */
  SUCCESS: 1,
  /** A failure that `--resume` keeps (never retried: 400, 404, 422, ...). */
  FINAL_ERROR: 2,
  /** A finished record waiting in the reorder spill file (`--order input`). */
  SPILLED: 3,
} as const;

/** One of {@link RecordKind}. */
export type RecordKindValue = (typeof RecordKind)[keyof typeof RecordKind];

/** Result of {@link FinishedSet.lookup}. */
export type FinishedLookup =
  | { found: false }
  | { found: true; kind: RecordKindValue; sameRequest: boolean; slot: number };

/** See {@link createFinishedSet}. */
export interface FinishedSet {
  /** Adds a record; false if that custom_id is already there (then nothing changes). */
  add(
    customId: string,
    recordId: string,
    kind: RecordKindValue,
    extraA?: number,
    extraB?: number,
  ): boolean;
  /** Replaces the entry of a custom_id (a later failure of the same line supersedes an earlier one). */
  replace(customId: string, recordId: string, kind: RecordKindValue): void;
  /** The kind of the entry for a custom_id, or 0 if none. */
  kindOf(customId: string): RecordKindValue | 0;
  lookup(customId: string, recordId: string): FinishedLookup;
  /** The two numbers stored with an entry (offset and length of a spilled record). */
  extraA(slot: number): number;
  extraB(slot: number): number;
  /** Marks an entry as stale: its line changed, so its record is dropped and the line redone. */
  markStale(slot: number): void;
  /** True if this record is the one kept for its custom_id (used to compact the errors file). */
  keeps(customId: string, recordId: string, kind: RecordKindValue): boolean;
  readonly size: number;
}

const KIND_MASK = 0x03;
const STALE = 0x04;

/** Two independent 32-bit hashes of a string (FNV-1a and a multiply-xorshift), as a pair. */
function hashPair(text: string): [number, number] {
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

/** The first 64 bits of a record id (`batch_req_` + hex), as two numbers. */
function tagOf(recordId: string): [number, number] {
  const hex = recordId.slice('batch_req_'.length);
  return [Number.parseInt(hex.slice(0, 8), 16) >>> 0, Number.parseInt(hex.slice(8, 16), 16) >>> 0];
}

/**
 * Creates an empty set.
 *
 * @example
 * const done = createFinishedSet();
 * done.add(head.customId, head.id, RecordKind.SUCCESS);
 * const hit = done.lookup(customId, recordId(runId, customId, text));
 * if (hit.found && hit.sameRequest) skip();
 */
export function createFinishedSet(): FinishedSet {
  let capacity = 1024;
  let keyA = new Uint32Array(capacity);
  let keyB = new Uint32Array(capacity); // 0 marks an empty slot (hashPair never returns 0 here)
  let tagA = new Uint32Array(capacity);
  let tagB = new Uint32Array(capacity);
  let flags = new Uint8Array(capacity);
  let extrasA = new Float64Array(capacity);
  let extrasB = new Float64Array(capacity);
  let size = 0;

  const find = (a: number, b: number): number => {
    let slot = a & (capacity - 1);
    for (;;) {
      const stored = keyB[slot] as number;
      if (stored === 0) return -slot - 1;
      if (stored === b && keyA[slot] === a) return slot;
      slot = (slot + 1) & (capacity - 1);
    }
  };

  const grow = (): void => {
    const old = { keyA, keyB, tagA, tagB, flags, extrasA, extrasB };
    capacity *= 2;
    keyA = new Uint32Array(capacity);
    keyB = new Uint32Array(capacity);
    tagA = new Uint32Array(capacity);
    tagB = new Uint32Array(capacity);
    flags = new Uint8Array(capacity);
    extrasA = new Float64Array(capacity);
    extrasB = new Float64Array(capacity);
    for (let s = 0; s < old.keyB.length; s++) {
      const b = old.keyB[s] as number;
      if (b === 0) continue;
      const a = old.keyA[s] as number;
      const slot = -find(a, b) - 1;
      keyA[slot] = a;
      keyB[slot] = b;
      tagA[slot] = old.tagA[s] as number;
      tagB[slot] = old.tagB[s] as number;
      flags[slot] = old.flags[s] as number;
      extrasA[slot] = old.extrasA[s] as number;
      extrasB[slot] = old.extrasB[s] as number;
    }
  };

  return {
    add(customId, recordId, kind, extraA = 0, extraB = 0) {
      const [a, b] = hashPair(customId);
      const found = find(a, b);
      if (found >= 0) return false;
      const slot = -found - 1;
      const [ta, tb] = tagOf(recordId);
      keyA[slot] = a;
      keyB[slot] = b;
      tagA[slot] = ta;
      tagB[slot] = tb;
      flags[slot] = kind;
      extrasA[slot] = extraA;
      extrasB[slot] = extraB;
      size++;
      if (size * 4 > capacity * 3) grow();
      return true;
    },
    replace(customId, recordId, kind) {
      const [a, b] = hashPair(customId);
      const slot = find(a, b);
      if (slot < 0) {
        this.add(customId, recordId, kind);
        return;
      }
      const [ta, tb] = tagOf(recordId);
      tagA[slot] = ta;
      tagB[slot] = tb;
      flags[slot] = kind;
    },
    kindOf(customId) {
      const [a, b] = hashPair(customId);
      const slot = find(a, b);
      if (slot < 0 || ((flags[slot] as number) & STALE) !== 0) return 0;
      return ((flags[slot] as number) & KIND_MASK) as RecordKindValue;
    },
    lookup(customId, recordId) {
      const [a, b] = hashPair(customId);
      const slot = find(a, b);
      if (slot < 0) return { found: false };
      const flag = flags[slot] as number;
      if ((flag & STALE) !== 0) return { found: false };
      const [ta, tb] = tagOf(recordId);
      return {
        found: true,
        kind: (flag & KIND_MASK) as RecordKindValue,
        sameRequest: tagA[slot] === ta && tagB[slot] === tb,
        slot,
      };
    },
    extraA: (slot) => extrasA[slot] as number,
    extraB: (slot) => extrasB[slot] as number,
    markStale(slot) {
      flags[slot] = (flags[slot] as number) | STALE;
    },
    keeps(customId, recordId, kind) {
      const [a, b] = hashPair(customId);
      const slot = find(a, b);
      if (slot < 0) return false;
      const flag = flags[slot] as number;
      if ((flag & STALE) !== 0 || (flag & KIND_MASK) !== kind) return false;
      const [ta, tb] = tagOf(recordId);
      return tagA[slot] === ta && tagB[slot] === tb;
    },
    get size() {
      return size;
    },
  };
}
