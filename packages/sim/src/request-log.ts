/**
 * What the simulator records: the bounded request log (a ring buffer, so a long benchmark cannot
 * grow the sim without limit) and the counters behind `stats()`.
 */

import type { SimEngineTiming } from './engine.js';
import type { FaultKind } from './faults.js';

/** One request as the simulator saw and answered it. Times are from the `clock` option (epoch ms by default). */
export interface SimRequestLogEntry {
  /** 0-based arrival order; also the `index` `faultFor` sees and the seeded-fault draw's key. */
  readonly seq: number;
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** The `x-request-id` header sent back. */
  readonly requestId: string;
  readonly receivedAt: number;
  /** When the status line and headers were written; unset if none were. */
  readonly headersSentAt?: number | undefined;
  /** When the response (or connection) closed, whoever closed it. */
  readonly finishedAt?: number | undefined;
  /** HTTP status sent; 0 while pending and for connections reset before a status was sent. */
  readonly status: number;
  /** The injected fault, if any. */
  readonly fault?: FaultKind | undefined;
  /** Whether the request asked for SSE (`stream: true`). */
  readonly stream: boolean;
  /** The client closed the connection before the server finished the response (never set by server-side resets). */
  readonly aborted: boolean;
  /** The parsed JSON body, when `logBodies` is on and the body parsed. */
  readonly body?: unknown;
  /** The wait a 429 asked for (`retry-after-ms`), so tests can check clients honour it. */
  readonly retryAfterMs?: number | undefined;
  /**
   * With `engine` on: what the engine did for this answer, as of its last byte (the same JSON the
   * answer carries in `x-volley-sim-timing`). Unset for requests the engine did not answer
   * (refused before it, 503 for a full queue, or abandoned by the client before the end).
   */
  readonly engine?: SimEngineTiming | undefined;
}

/** A log entry the server is still filling in. */
export type MutableLogEntry = { -readonly [K in keyof SimRequestLogEntry]: SimRequestLogEntry[K] };

/** Keeps the newest `capacity` entries; oldest are overwritten. */
export class RequestLog {
  readonly #entries: MutableLogEntry[] = [];
  readonly #capacity: number;
  #next = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Adds an entry, dropping the oldest when full. */
  push(entry: MutableLogEntry): void {
    if (this.#entries.length < this.#capacity) {
      this.#entries.push(entry);
      return;
    }
    this.#entries[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  /** The kept entries, oldest first (a copy: O(capacity), meant for tests and reports). */
  snapshot(): SimRequestLogEntry[] {
    if (this.#next === 0) return this.#entries.slice();
    return this.#entries.slice(this.#next).concat(this.#entries.slice(0, this.#next));
  }
}

/** Counters since the simulator started; unlike the log they are never dropped. */
export interface SimStats {
  /** Requests received, whatever their outcome. */
  requests: number;
  /** Requests whose connection or response has not closed yet. */
  inFlight: number;
  /** Responses by status; 0 counts connections reset before a status was sent. */
  byStatus: Record<number, number>;
  /** Injected faults by kind. */
  byFault: Partial<Record<FaultKind, number>>;
  /** 429s from `limits` (injected 429s count in `byFault` and `byStatus` only). */
  rateLimited: number;
  /** Requests the client gave up on before the response finished. */
  aborted: number;
  /** 503s for a full engine waiting queue (`engine.maxWaiting`). */
  queueFull: number;
  /** Prompt tokens of answered chat, completion and embedding requests. */
  promptTokens: number;
  /** Completion tokens generated for answered requests (before any delivery fault cut them). */
  completionTokens: number;
  /** Embedding vectors served. */
  embeddings: number;
}
