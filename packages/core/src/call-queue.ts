/**
 * Calls waiting for a concurrency slot. Retries go ahead of new work: they are older, and their
 * callers have waited longest.
 *
 *   push(new call) --> [ fresh ]  \
 *                                  >-- shift(): retries first --> admitted
 *   pushRetry(call) --> [ retry ] /
 *
 * A call that ends while it waits (aborted, past its deadline) stays where it is and is counted
 * as dead until `shift` meets it: removing it from the middle of a ring would cost O(n).
 */
import { FixedQueue } from './fixed-queue.js';

export interface QueuedCall {
  /** `queued` while it waits here; anything else means it left or ended. */
  state: string;
  deadlineAt: number;
}

export class CallQueue<T extends QueuedCall> {
  readonly #fresh = new FixedQueue<T>();
  readonly #retry = new FixedQueue<T>();
  #dead = 0;

  /** Live calls waiting. */
  get length(): number {
    return this.#fresh.length + this.#retry.length - this.#dead;
  }

  push(call: T): void {
    this.#fresh.push(call);
  }

  pushRetry(call: T): void {
    this.#retry.push(call);
  }

  /** The next live call, retries first; skips (and forgets) calls that ended while waiting. */
  shift(): T | undefined {
    for (;;) {
      const call = this.#retry.shift() ?? this.#fresh.shift();
      if (call === undefined) return undefined;
      if (call.state === 'queued') return call;
      this.#dead--;
    }
  }

  /** A call still in the queue has ended (the caller must have changed its state from `queued`). */
  markDead(): void {
    this.#dead++;
  }

  /** Calls past their deadline, still waiting. The caller ends them (and marks them dead). */
  *expired(now: number): Iterable<T> {
    for (const call of this.live()) if (now >= call.deadlineAt) yield call;
  }

  /** The live calls waiting, retries first. */
  *live(): Iterable<T> {
    for (const queue of [this.#retry, this.#fresh])
      for (const call of queue) if (call.state === 'queued') yield call;
  }

  /** Forgets every call (the caller has ended them all). */
  clear(): void {
    this.#retry.drain();
    this.#fresh.drain();
    this.#dead = 0;
  }
}
