/**
 * `--order input`: records written in input order although requests finish in any order.
 *
 *            complete(line, record)
 *                  │ line is the head? ──yes──► emit (results / errors file)
 *                  no                                   ▲
 *                  ▼                                    │ head advances over done and
 *   spill file (append, durable) + memory cache ───────┘ skipped lines, stops at a pending one
 *
 * A record finished ahead of its turn is written to the spill file at once, not only when memory
 * runs short: a result that was paid for survives kill -9 even while it waits for an earlier,
 * slow line, and `--resume` emits it from the spill instead of sending the line again. The memory
 * cache (`cacheBytes`) only saves reading it back.
 *
 * Memory is bounded in bytes by the cache and in lines by `windowLines`: per line in the window
 * the buffer keeps 13 bytes (state, spill offset, length). A line more than `windowLines` after
 * the head waits in `waitForRoom`, so one request stuck in retries for minutes slows intake
 * instead of growing the buffer without bound.
 */

import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { JournalFile } from '../jsonl/journal.js';

/** One record waiting for its turn. */
export interface OrderedRecord {
  target: 'results' | 'errors';
  record: string;
}

/** Options of {@link createReorderBuffer}. */
export interface ReorderBufferOptions {
  /** Most lines between the head and the newest line. */
  windowLines: number;
  /** Bytes of spilled records also kept in memory. */
  cacheBytes: number;
  /** The spill file (opened for append; on resume it holds the previous run's entries too). */
  spill: JournalFile;
  /**
   * Appends a record to its file; called strictly in input order. The returned promise resolves
   * when the record is written; the buffer waits for it only when `mustWait` says so.
   */
  emit(record: OrderedRecord): Promise<void>;
  /** True when the output queues are long enough that emission should wait for them. */
  mustWait(): boolean;
}

/** See {@link createReorderBuffer}. */
export interface ReorderBuffer {
  /** Resolves once `lineNo` fits in the window (immediately, usually). */
  waitForRoom(lineNo: number): Promise<void> | undefined;
  /** `lineNo` will produce a record later (a request was sent). */
  expect(lineNo: number): void;
  /** `lineNo` produces no record in this run (finished before, or blank). */
  skip(lineNo: number): void;
  /** The record of `lineNo`. Resolves when it is written to the spill or to its file. */
  complete(lineNo: number, record: OrderedRecord): Promise<void>;
  /** `lineNo`'s record is already in the spill file (from an interrupted run), `length` with its `\n`. */
  completeSpilled(lineNo: number, offset: number, length: number): void;
  /** Lines expected but not completed (in flight, or abandoned by an interrupt). */
  readonly pending: number;
  /** Line number of the next record to write. */
  readonly head: number;
  /** Waits until every record that can be written (up to the first pending line) is written. */
  settle(): Promise<void>;
  /** Closes the spill reader. */
  close(): Promise<void>;
}

interface RoomWaiter {
  lineNo: number;
  wake: () => void;
}

const EMPTY = 0;
const SKIP = 1;
const PENDING = 2;
const DONE = 3;

const SEP = '\u0000';

/**
 * Spill line: `lineNo NUL target NUL record`. NUL cannot occur in JSON text (the record), so no
 * lengths need computing or escaping.
 */
export function encodeSpillLine(lineNo: number, record: OrderedRecord): string {
  return `${lineNo}${SEP}${record.target === 'results' ? 'r' : 'e'}${SEP}${record.record}`;
}

/** Parses a spill line (without its `\n`); undefined if it is not one. */
export function decodeSpillLine(
  text: string,
): { lineNo: number; record: OrderedRecord } | undefined {
  const a = text.indexOf(SEP);
  const b = a === -1 ? -1 : text.indexOf(SEP, a + 1);
  if (a === -1 || b === -1) return undefined;
  const lineNo = Number(text.slice(0, a));
  const target = text.slice(a + 1, b);
  if (!Number.isSafeInteger(lineNo) || lineNo < 1 || (target !== 'r' && target !== 'e')) {
    return undefined;
  }
  return {
    lineNo,
    record: { target: target === 'r' ? 'results' : 'errors', record: text.slice(b + 1) },
  };
}

/**
 * Creates a reorder buffer whose head starts at line 1.
 *
 * @example
 * const reorder = createReorderBuffer({ windowLines: 1 << 20, cacheBytes: 8 << 20, spill, emit, mustWait });
 * await reorder.waitForRoom(line.lineNo);
 * reorder.expect(line.lineNo);
 * // later, from the request's callback:
 * await reorder.complete(line.lineNo, { target: 'results', record });
 */
export function createReorderBuffer(options: ReorderBufferOptions): ReorderBuffer {
  return new Reorder(options);
}

class Reorder implements ReorderBuffer {
  readonly #options: ReorderBufferOptions;
  readonly #window: number;
  readonly #state: Uint8Array;
  readonly #offset: Float64Array;
  readonly #length: Float64Array;
  readonly #cache = new Map<number, OrderedRecord>();
  #cacheBytes = 0;
  #head = 1;
  #last = 0; // highest registered line
  #pending = 0;
  #pumping: Promise<void> = Promise.resolve();
  #running = false;
  #roomWaiters: RoomWaiter[] = [];
  #reader: FileHandle | undefined;

  constructor(options: ReorderBufferOptions) {
    this.#options = options;
    this.#window = options.windowLines;
    this.#state = new Uint8Array(this.#window);
    this.#offset = new Float64Array(this.#window);
    this.#length = new Float64Array(this.#window);
  }

  get pending(): number {
    return this.#pending;
  }

  get head(): number {
    return this.#head;
  }

  waitForRoom(lineNo: number): Promise<void> | undefined {
    if (lineNo < this.#head + this.#window) return undefined;
    return new Promise((wake) => this.#roomWaiters.push({ lineNo, wake }));
  }

  expect(lineNo: number): void {
    this.#register(lineNo, PENDING);
    this.#pending++;
  }

  skip(lineNo: number): void {
    this.#register(lineNo, SKIP);
    this.#kick();
  }

  complete(lineNo: number, record: OrderedRecord): Promise<void> {
    const slot = lineNo % this.#window;
    if (lineNo > this.#last) this.#register(lineNo, DONE);
    else {
      if (this.#state[slot] === PENDING) this.#pending--;
      this.#state[slot] = DONE;
    }
    if (lineNo === this.#head) {
      // Its turn: straight to its file, no spill. The pump emits it synchronously.
      this.#cache.set(lineNo, record);
      this.#cacheBytes += record.record.length;
      const emitted = this.#emitted(lineNo);
      this.#kick();
      return emitted;
    }
    const ticket = this.#options.spill.append(encodeSpillLine(lineNo, record));
    this.#offset[slot] = ticket.offset;
    this.#length[slot] = ticket.bytes;
    if (this.#cacheBytes + record.record.length <= this.#options.cacheBytes) {
      this.#cache.set(lineNo, record);
      this.#cacheBytes += record.record.length;
    }
    return ticket.written;
  }

  completeSpilled(lineNo: number, offset: number, length: number): void {
    const slot = lineNo % this.#window;
    this.#register(lineNo, DONE);
    this.#offset[slot] = offset;
    this.#length[slot] = length;
    this.#kick();
  }

  async settle(): Promise<void> {
    while (this.#running) await this.#pumping;
  }

  async close(): Promise<void> {
    await this.#reader?.close().catch(() => undefined);
    this.#reader = undefined;
  }

  #register(lineNo: number, state: number): void {
    // Lines between registrations (blank lines) produce nothing.
    for (let skipped = this.#last + 1; skipped < lineNo; skipped++) {
      this.#state[skipped % this.#window] = SKIP;
    }
    this.#state[lineNo % this.#window] = state;
    if (lineNo > this.#last) this.#last = lineNo;
  }

  /** A promise for the emission of `lineNo`, which the pump resolves. */
  readonly #emitWaiters = new Map<
    number,
    { resolve: () => void; reject: (error: Error) => void }
  >();

  #emitted(lineNo: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#emitWaiters.set(lineNo, { resolve, reject });
    });
  }

  #kick(): void {
    // A synchronous flag, not the promise: `.finally` would clear it a microtask late, and a
    // completion arriving in between would find the pump "running" and never be emitted.
    if (this.#running) return;
    this.#running = true;
    this.#pumping = this.#pump();
    // Errors reach the callers through the emission promises and settle(); not unhandled here.
    this.#pumping.catch(() => undefined);
  }

  async #pump(): Promise<void> {
    // The flag is cleared in this function's own finally: when the loop ends without awaiting,
    // that happens synchronously, before another completion can arrive and find it still set.
    try {
      while (this.#head <= this.#last) {
        const lineNo = this.#head;
        const slot = lineNo % this.#window;
        const state = this.#state[slot];
        if (state === PENDING || state === EMPTY) break;
        if (state === SKIP) {
          this.#state[slot] = EMPTY;
          this.#advance();
          continue;
        }
        let record = this.#cache.get(lineNo);
        if (record !== undefined) {
          this.#cache.delete(lineNo);
          this.#cacheBytes -= record.record.length;
        } else {
          record = await this.#readSpill(slot);
        }
        this.#state[slot] = EMPTY;
        this.#advance();
        const written = this.#options.emit(record);
        const waiter = this.#emitWaiters.get(lineNo);
        if (waiter !== undefined) {
          this.#emitWaiters.delete(lineNo);
          written.then(waiter.resolve, waiter.reject);
        } else {
          written.catch(() => undefined);
        }
        if (this.#options.mustWait()) await written;
      }
    } finally {
      this.#running = false;
    }
  }

  #advance(): void {
    this.#head++;
    if (this.#roomWaiters.length === 0) return;
    const limit = this.#head + this.#window;
    const still: RoomWaiter[] = [];
    for (const waiter of this.#roomWaiters) {
      if (waiter.lineNo < limit) waiter.wake();
      else still.push(waiter);
    }
    this.#roomWaiters = still;
  }

  async #readSpill(slot: number): Promise<OrderedRecord> {
    const offset = this.#offset[slot] as number;
    const length = this.#length[slot] as number;
    const { spill } = this.#options;
    if (offset + length > spill.writtenBytes) await spill.flush();
    this.#reader ??= await open(spill.path, 'r');
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.#reader.read(buffer, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    const text = buffer.toString('utf8', 0, buffer[done - 1] === 0x0a ? done - 1 : done);
    const decoded = decodeSpillLine(text);
    if (decoded === undefined) {
      throw new Error(`the reorder spill file ${spill.path} is damaged at byte ${offset}`);
    }
    return decoded.record;
  }
}
