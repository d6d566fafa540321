/**
 * A `Clock` that only moves when a test says so. `advance(ms)` fires every timer that falls due
 * within the step, in due-time order (ties in the order they were set), with `now()` reading the
 * timer's due time while its callback runs; timers armed by a callback fire too if they fall
 * inside the same step. Nothing here touches the real timers.
 */
import type { Clock, TimerHandle } from '../../src/clock.js';

interface ManualTimer extends TimerHandle {
  readonly dueAt: number;
  readonly seq: number;
  readonly callback: () => void;
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<ManualTimer>();

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer: ManualTimer = {
      dueAt: this.#now + Math.max(0, delayMs),
      seq: this.#seq++,
      callback,
      unref: () => timer,
    };
    this.#timers.add(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as ManualTimer);
  }

  /** Timers armed and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Due time of the next timer, if any. */
  nextDueAt(): number | undefined {
    return this.#next(Infinity)?.dueAt;
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot advance by ${ms} ms`);
    const target = this.#now + ms;
    for (let timer = this.#next(target); timer !== undefined; timer = this.#next(target)) {
      this.#timers.delete(timer);
      this.#now = timer.dueAt;
      timer.callback();
    }
    this.#now = target;
  }

  /** Moves time to the absolute `atMs` (never backwards). */
  advanceTo(atMs: number): void {
    this.advance(atMs - this.#now);
  }

  #next(limit: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const timer of this.#timers) {
      if (timer.dueAt > limit) continue;
      if (
        best === undefined ||
        timer.dueAt < best.dueAt ||
        (timer.dueAt === best.dueAt && timer.seq < best.seq)
      ) {
        best = timer;
      }
    }
    return best;
  }
}
