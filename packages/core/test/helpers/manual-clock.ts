/**
 * A `Clock` that only moves when a test says so. `advance(ms)` fires every timer that falls due
 * within the step, in due-time order (ties in the order they were set), with `now()` reading the
 * timer's due time while its callback runs; timers armed by a callback fire too if they fall
 * inside the same step, and an interval re-arms itself one period after each firing.
 *
 * `defer` is a turn boundary, not a time: it runs on the global `setImmediate` (looked up at each
 * call, so a test can hold deferred work by stubbing it), and tests let real event-loop turns pass
 * (`tick()`) to see deferred work, as they let microtasks run.
 */
import type { Clock, TimerHandle } from '../../src/clock.js';

interface ManualTimer extends TimerHandle {
  dueAt: number;
  seq: number;
  readonly callback: () => void;
  /** Set for intervals: the timer re-arms this long after each firing. */
  readonly periodMs: number | undefined;
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
    return this.#arm(callback, delayMs, undefined);
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as ManualTimer);
  }

  setInterval(callback: () => void, periodMs: number): TimerHandle {
    if (!(periodMs > 0))
      throw new RangeError(`an interval needs a period above 0, not ${periodMs}`);
    return this.#arm(callback, periodMs, periodMs);
  }

  clearInterval(handle: TimerHandle): void {
    this.#timers.delete(handle as ManualTimer);
  }

  defer(callback: () => void): void {
    setImmediate(callback);
  }

  /** Timers armed and not yet fired or cleared (an interval counts until it is cleared). */
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
      this.#now = timer.dueAt;
      this.#fire(timer);
    }
    this.#now = target;
  }

  /** Moves time to the absolute `atMs` (never backwards). */
  advanceTo(atMs: number): void {
    this.advance(atMs - this.#now);
  }

  /**
   * Fires every interval once now, without moving time: what a test does to say "the periodic
   * check runs at this instant". Each fired interval's next due time counts from now.
   */
  fireIntervals(): void {
    for (const timer of [...this.#timers]) if (timer.periodMs !== undefined) this.#fire(timer);
  }

  #arm(callback: () => void, delayMs: number, periodMs: number | undefined): ManualTimer {
    const timer: ManualTimer = {
      dueAt: this.#now + Math.max(0, delayMs),
      seq: this.#seq++,
      callback,
      periodMs,
      ref: () => timer,
      unref: () => timer,
    };
    this.#timers.add(timer);
    return timer;
  }

  #fire(timer: ManualTimer): void {
    if (timer.periodMs === undefined) this.#timers.delete(timer);
    else {
      timer.dueAt = this.#now + timer.periodMs;
      timer.seq = this.#seq++;
    }
    timer.callback();
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
