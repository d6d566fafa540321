/**
 * The set of lines a previous run already finished, built on `--resume` from the records in the
 * output files, and consulted for every input line.
 *
 * The custom_ids are kept exactly, in an {@link IdTable} (about 29 bytes per `req-123456`-style
 * id, 56 per UUID); beside each, 25 bytes in typed arrays: the first 64 bits of the record id
 * (which encodes the request, see record.ts), a flag byte and two numbers for spilled records.
 * A `Map<string, string>` of custom_id to record id costs about 150 bytes an entry in V8.
 *
 * Ids are compared, not only hashed: two custom_ids with equal hashes once made `--resume` of a
 * finished run refuse with a false conflict, and `--force-resume` skip a line that never ran.
 */

import type { IdTableOptions } from '../jsonl/id-table.js';
import { createIdTable } from '../jsonl/id-table.js';

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

/** The first 64 bits of a record id (`batch_req_` + hex), as two numbers. */
function tagOf(recordId: string): [number, number] {
  const hex = recordId.slice('batch_req_'.length);
  return [Number.parseInt(hex.slice(0, 8), 16) >>> 0, Number.parseInt(hex.slice(8, 16), 16) >>> 0];
}

/**
 * Creates an empty set. `options` are for tests (a weak hash, to force collisions).
 *
 * @example
 * const done = createFinishedSet();
 * done.add(head.customId, head.id, RecordKind.SUCCESS);
 * const hit = done.lookup(customId, recordId(runId, customId, text));
 * if (hit.found && hit.sameRequest) skip();
 */
export function createFinishedSet(options: IdTableOptions = {}): FinishedSet {
  const ids = createIdTable(options);
  // Per id, by its index in `ids` (which is also the `slot` handed out).
  let capacity = 1024;
  let tagA = new Uint32Array(capacity);
  let tagB = new Uint32Array(capacity);
  let flags = new Uint8Array(capacity);
  let extrasA = new Float64Array(capacity);
  let extrasB = new Float64Array(capacity);

  const grow = (): void => {
    capacity *= 2;
    const widen = <T extends Uint32Array | Uint8Array | Float64Array>(old: T, bigger: T): T => {
      bigger.set(old);
      return bigger;
    };
    tagA = widen(tagA, new Uint32Array(capacity));
    tagB = widen(tagB, new Uint32Array(capacity));
    flags = widen(flags, new Uint8Array(capacity));
    extrasA = widen(extrasA, new Float64Array(capacity));
    extrasB = widen(extrasB, new Float64Array(capacity));
  };

  const set = (slot: number, recordId: string, kind: RecordKindValue): void => {
    const [ta, tb] = tagOf(recordId);
    tagA[slot] = ta;
    tagB[slot] = tb;
    flags[slot] = kind;
  };

  /** The slot of a custom_id whose entry is not stale, or -1. */
  const live = (customId: string): number => {
    const slot = ids.indexOf(customId);
    return slot >= 0 && ((flags[slot] as number) & STALE) === 0 ? slot : -1;
  };

  const isRecord = (slot: number, recordId: string): boolean => {
    const [ta, tb] = tagOf(recordId);
    return tagA[slot] === ta && tagB[slot] === tb;
  };

  return {
    add(customId, recordId, kind, extraA = 0, extraB = 0) {
      const slot = ids.add(customId);
      if (slot < 0) return false;
      if (slot >= capacity) grow();
      set(slot, recordId, kind);
      extrasA[slot] = extraA;
      extrasB[slot] = extraB;
      return true;
    },
    replace(customId, recordId, kind) {
      const slot = ids.indexOf(customId);
      if (slot < 0) this.add(customId, recordId, kind);
      else set(slot, recordId, kind);
    },
    kindOf(customId) {
      const slot = live(customId);
      return slot < 0 ? 0 : (((flags[slot] as number) & KIND_MASK) as RecordKindValue);
    },
    lookup(customId, recordId) {
      const slot = live(customId);
      if (slot < 0) return { found: false };
      return {
        found: true,
        kind: ((flags[slot] as number) & KIND_MASK) as RecordKindValue,
        sameRequest: isRecord(slot, recordId),
        slot,
      };
    },
    extraA: (slot) => extrasA[slot] as number,
    extraB: (slot) => extrasB[slot] as number,
    markStale(slot) {
      flags[slot] = (flags[slot] as number) | STALE;
    },
    keeps(customId, recordId, kind) {
      const slot = live(customId);
      return (
        slot >= 0 && ((flags[slot] as number) & KIND_MASK) === kind && isRecord(slot, recordId)
      );
    },
    get size() {
      return ids.size;
    },
  };
}
