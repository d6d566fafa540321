/**
 * The set of `custom_id`s seen so far in one pass, to refuse a second line with the same id.
 * Both `volley run` and `volley embed` use it, over millions of lines.
 */

import type { IdTableOptions } from './id-table.js';
import { createIdTable } from './id-table.js';

/** A set of `custom_id`s; see {@link createDuplicateTracker}. */
export interface DuplicateTracker {
  /** Adds an id; false if it was already there (a duplicate). */
  add(id: string): boolean;
  has(id: string): boolean;
  /** Distinct ids stored. */
  readonly size: number;
  /** Bytes of memory held, for diagnostics. */
  readonly bytes: number;
  /** The most slots one lookup has visited, for diagnostics. */
  readonly longestProbe: number;
}

/**
 * Creates an exact set of ids for duplicate detection across millions of lines: an
 * {@link createIdTable | id table} (compact, compares ids, keyed hash). `options` are for tests.
 *
 * @example
 * const ids = createDuplicateTracker();
 * if (!ids.add(request.customId)) report(duplicateCustomIdIssue(line, request.customId));
 */
export function createDuplicateTracker(options: IdTableOptions = {}): DuplicateTracker {
  const ids = createIdTable(options);
  return {
    add: (id) => ids.add(id) >= 0,
    has: (id) => ids.indexOf(id) >= 0,
    get size() {
      return ids.size;
    },
    get bytes() {
      return ids.bytes;
    },
    get longestProbe() {
      return ids.longestProbe;
    },
  };
}
