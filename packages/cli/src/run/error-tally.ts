/**
 * The failures of a run grouped by what they say, so the summary can show the top messages
 * ("HTTP 404: The model `gpt-4o-mini` does not exist.", 20,000 lines) and not only their codes
 * (`VOLLEY_ERR_HTTP: 20,000`), which told a newcomer nothing.
 *
 * Messages that differ only in numbers (a line number, a byte offset, a token count) are one kind:
 * the key replaces digits. The first message of a kind is the one shown. Memory is bounded: past
 * {@link MAX_KINDS} kinds, new kinds are counted together and not listed.
 */
import { scrubSecrets } from '@volley/core';
import type { TopError } from '../progress.js';

/** Longest message shown in the summary and `topErrors`. */
export const TOP_ERROR_MESSAGE_CHARS = 120;
/** Kinds kept; a run with more distinct messages than this is listing noise anyway. */
const MAX_KINDS = 1000;

/** One failure as the tally sees it. */
export interface TalliedError {
  code: string;
  status?: number | undefined;
  message: string;
  customId: string;
}

/** Counts failures by kind; see {@link createErrorTally}. */
export interface ErrorTally {
  add(error: TalliedError): void;
  /** The `limit` most frequent kinds, most frequent first (ties: the first seen first). */
  top(limit?: number): TopError[];
}

/**
 * Scrubs secrets, then cuts: cutting first could leave the start of a key that no longer matches
 * the registered secret, and print it.
 *
 * @example
 * shortMessage('HTTP 401: Incorrect API key provided: sk-abc…') // 'HTTP 401: Incorrect API key provided: [REDACTED]…'
 */
export function shortMessage(message: string, chars: number = TOP_ERROR_MESSAGE_CHARS): string {
  const clean = scrubSecrets(message).replace(/\s+/g, ' ').trim();
  return clean.length <= chars ? clean : `${clean.slice(0, chars - 1)}\u2026`;
}

/**
 * Creates an empty tally.
 *
 * @example
 * const tally = createErrorTally();
 * tally.add({ code: 'VOLLEY_ERR_HTTP', status: 404, message, customId: 'req-7' });
 * summary.topErrors = tally.top(5);
 */
export function createErrorTally(): ErrorTally {
  const kinds = new Map<string, TopError>();
  return {
    add(error) {
      const message = shortMessage(error.message);
      const key = `${error.code}\u0000${error.status ?? ''}\u0000${message.replace(/\d+/g, '#')}`;
      const kind = kinds.get(key);
      if (kind !== undefined) {
        kind.count++;
        return;
      }
      if (kinds.size >= MAX_KINDS) return;
      kinds.set(key, {
        code: error.code,
        ...(error.status === undefined ? {} : { status: error.status }),
        message,
        count: 1,
        exampleId: error.customId,
      });
    },
    top(limit = 5) {
      // Map order is first-seen order, and the sort is stable: ties keep it.
      return [...kinds.values()]
        .sort((a, b) => b.count - a.count)
        .slice(0, limit)
        .map((kind) => ({ ...kind }));
    },
  };
}
