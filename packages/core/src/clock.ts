/**
 * Time is injected so buckets, backoff, deadlines and batching can be tested with a manual clock
 * instead of sleeps. Every timer in core goes through a `Clock`. `now()` is monotonic milliseconds
 * (never wall time: a clock step must not refill a bucket).
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** A repeating timer, for periodic checks (the supervisor's deadline sweep). */
  setInterval(callback: () => void, periodMs: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
  /**
   * Runs `callback` once the callbacks of the current event-loop turn are done (`setImmediate`),
   * so that work landing during one turn is handled together: the supervisor sends the attempts
   * granted in a turn to the workers as one batch.
   */
  defer(callback: () => void): void;
}

export interface TimerHandle {
  /** Keeps the process alive while the timer is armed (the default for a system timer). */
  ref?(): unknown;
  /** Lets the process exit while only this timer is armed. */
  unref?(): unknown;
}

/**
 * The longest delay a timer can take: Node stores it in 32 bits and turns anything longer into
 * 1 ms (with a TimeoutOverflowWarning), so an overlong wait would become a busy loop.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  setInterval: (callback, periodMs) => setInterval(callback, periodMs),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
  defer: (callback) => {
    setImmediate(callback);
  },
};
