/**
 * The crash budget, Erlang/OTP's restart intensity: at most `maxRestarts` worker crashes within
 * any `windowMs`; one more and the supervisor escalates instead of restarting forever.
 */
export interface RestartBudget {
  /** Worker crashes tolerated within `windowMs` before escalating. */
  maxRestarts: number;
  windowMs: number;
}

export class RestartIntensity {
  readonly #budget: RestartBudget;
  readonly #crashTimes: number[] = [];

  constructor(budget: RestartBudget) {
    this.#budget = budget;
  }

  /** Records a crash at `now`; true when it exceeds the budget. */
  crashed(now: number): boolean {
    this.#crashTimes.push(now);
    while (this.#crashTimes.length > 0 && this.#crashTimes[0]! < now - this.#budget.windowMs)
      this.#crashTimes.shift();
    return this.#crashTimes.length > this.#budget.maxRestarts;
  }

  /** Crashes inside the current window. */
  get recent(): number {
    return this.#crashTimes.length;
  }

  get windowMs(): number {
    return this.#budget.windowMs;
  }
}
