/**
 * Endpoint health: which endpoints may take the next attempt, and the circuit breaker that takes
 * a failing one out of rotation.
 *
 *   closed --failureThreshold faults in a row--> open --openMs passed--> half-open (one probe)
 *   half-open --probe succeeds--> closed        half-open --probe faults--> open (openMs × 2, capped)
 *   any --stop(error) (a 401, no quota)--> stopped for good
 *
 * Apart from the circuit, an endpoint is *down* when nothing answers at its address, or what
 * answers is not an OpenAI-compatible API (`isUnreachable`), in `downAfterRounds` rounds in a row
 * with no sign of life between. A round is the attempts that were on the wire together: ten
 * concurrent calls refused at once are one round, the next one is a retry or a probe admitted after
 * that. Calls do not wait for a down endpoint: with no other endpoint they fail at once with its
 * cause (`ENDPOINT_DOWN`). Its circuit stays open and takes a probe when the pause is over, so a
 * server that comes back is used again.
 *
 * The supervisor asks `choose()` for each attempt it admits and reports what became of it; this
 * class only keeps the books and says when a paused endpoint is worth trying again (`onWake`).
 */
import type { EventEmitter } from 'eventemitter3';
import type { Clock, TimerHandle } from './clock.js';
import { ErrorCode, VolleyError } from './errors.js';
import type { VolleyEvents } from './events.js';

/**
 * An endpoint that fails `failureThreshold` times in a row is taken out of rotation for `openMs`,
 * then tried with one probe; each failed probe doubles the pause, up to `maxOpenMs`.
 */
export interface CircuitBreakerPolicy {
  failureThreshold: number;
  openMs: number;
  maxOpenMs: number;
  /** Rounds of unreachable attempts in a row that mark an endpoint down (see above). */
  downAfterRounds: number;
}

export const defaultCircuitBreaker: CircuitBreakerPolicy = {
  failureThreshold: 5,
  openMs: 2_000,
  maxOpenMs: 60_000,
  downAfterRounds: 3,
};

/** An admitted attempt: whether it probes a half-open circuit, and its place in the endpoint's order. */
export interface Admission {
  isProbe: boolean;
  ticket: number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

/** `choose()`: every endpoint in rotation has an open circuit; one will take a probe later. */
export const WAIT_FOR_CIRCUIT = Symbol('wait-for-circuit');

interface Endpoint {
  circuit: CircuitState;
  consecutiveFailures: number;
  openUntil: number;
  openMs: number;
  /** A half-open endpoint takes one probe at a time. */
  probing: boolean;
  /** Attempts admitted to this endpoint and not yet settled (waiting, ready or on the wire). */
  outstanding: number;
  stopped: VolleyError | undefined;
  /** Attempts admitted so far: an attempt's ticket is the count at its admission. */
  admitted: number;
  /** Rounds of unreachable attempts since the last sign of life. */
  unreachableRounds: number;
  /** Only attempts admitted after this ticket can start the next round. */
  roundTicket: number;
  down: VolleyError | undefined;
}

export class EndpointHealth {
  readonly #endpoints: Endpoint[];
  readonly #breaker: CircuitBreakerPolicy;
  readonly #clock: Clock;
  readonly #events: EventEmitter<VolleyEvents>;
  readonly #onWake: () => void;
  /** How each endpoint is named in messages (no credentials). */
  readonly #labels: readonly string[];
  #wakeTimer: TimerHandle | undefined;
  #lastChosen = -1;

  constructor(
    labels: readonly string[],
    breaker: CircuitBreakerPolicy,
    clock: Clock,
    events: EventEmitter<VolleyEvents>,
    /** Called when an open circuit may take a probe again. */
    onWake: () => void,
  ) {
    this.#breaker = breaker;
    this.#clock = clock;
    this.#events = events;
    this.#onWake = onWake;
    this.#labels = labels;
    this.#endpoints = labels.map(() => ({
      circuit: 'closed',
      consecutiveFailures: 0,
      openUntil: 0,
      openMs: breaker.openMs,
      probing: false,
      outstanding: 0,
      stopped: undefined,
      admitted: 0,
      unreachableRounds: 0,
      roundTicket: 0,
      down: undefined,
    }));
  }

  get count(): number {
    return this.#endpoints.length;
  }

  /**
   * Least outstanding attempts among the endpoints in rotation: not stopped, circuit not open (a
   * half-open one takes a single probe). `undefined` when every endpoint is stopped or down;
   * `WAIT_FOR_CIRCUIT` when some will come back (a wake-up is armed for the first of them).
   * With `limits` (per-endpoint concurrency, endpoint-limits.ts), an endpoint holding its limit is
   * skipped, and the least full one (outstanding / limit) wins: replicas of different sizes fill
   * alike. When every usable endpoint is full it is `WAIT_FOR_CIRCUIT` too: the next outcome
   * frees a place and the supervisor asks again. `except` is never chosen (a hedged call's copy
   * goes to another replica than its first attempt).
   */
  choose(
    limits?: { limit(endpoint: number): number },
    except?: number,
  ): number | undefined | typeof WAIT_FOR_CIRCUIT {
    const now = this.#clock.now();
    const count = this.#endpoints.length;
    let best: number | undefined;
    let bestFill = 0;
    let waiting = false;
    // Start after the last choice so ties rotate instead of always landing on endpoint 0.
    for (let k = 1; k <= count; k++) {
      const i = (this.#lastChosen + k) % count;
      const endpoint = this.#endpoints[i]!;
      if (endpoint.stopped !== undefined || i === except) continue;
      if (endpoint.circuit === 'open' && now >= endpoint.openUntil) {
        endpoint.circuit = 'half-open';
        endpoint.probing = false;
      }
      if (endpoint.circuit === 'open' || (endpoint.circuit === 'half-open' && endpoint.probing)) {
        // Calls wait for a circuit to close, not for a down endpoint to come back.
        if (endpoint.down === undefined) waiting = true;
        continue;
      }
      const limit = limits?.limit(i) ?? Number.POSITIVE_INFINITY;
      if (endpoint.outstanding >= limit) {
        waiting = true;
        continue;
      }
      // An unlimited endpoint compares by count (a huge finite divisor keeps the order).
      const fill = endpoint.outstanding / Math.min(limit, Number.MAX_SAFE_INTEGER);
      if (best === undefined || fill < bestFill) {
        best = i;
        bestFill = fill;
      }
    }
    if (best !== undefined) return best;
    if (!waiting) return undefined;
    this.#armWake();
    return WAIT_FOR_CIRCUIT;
  }

  /** An attempt was admitted to `index`. */
  admit(index: number): Admission {
    this.#lastChosen = index;
    const endpoint = this.#endpoints[index]!;
    endpoint.outstanding++;
    const isProbe = endpoint.circuit === 'half-open';
    if (isProbe) endpoint.probing = true;
    return { isProbe, ticket: ++endpoint.admitted };
  }

  /** An admitted attempt is over (answered, or never sent); a probe that said nothing frees the probe slot. */
  release(index: number, wasProbe: boolean): void {
    const endpoint = this.#endpoints[index]!;
    endpoint.outstanding--;
    if (wasProbe) endpoint.probing = false;
  }

  /** A failure that says the endpoint itself is unwell (see `isEndpointFault`). */
  onFault(index: number): void {
    const endpoint = this.#endpoints[index]!;
    endpoint.probing = false;
    if (endpoint.circuit === 'half-open') {
      endpoint.openMs = Math.min(endpoint.openMs * 2, this.#breaker.maxOpenMs);
      this.#open(index);
      return;
    }
    if (
      endpoint.circuit === 'closed' &&
      ++endpoint.consecutiveFailures >= this.#breaker.failureThreshold
    )
      this.#open(index);
  }

  onSuccess(index: number): void {
    const endpoint = this.#endpoints[index]!;
    const wasDown = endpoint.circuit !== 'closed' || endpoint.down !== undefined;
    endpoint.circuit = 'closed';
    endpoint.consecutiveFailures = 0;
    endpoint.openMs = this.#breaker.openMs;
    endpoint.probing = false;
    this.onAnswered(index);
    if (wasDown) this.#events.emit('endpointHealthy', { endpoint: index });
  }

  /** The attempt reached the API, whatever it answered: the endpoint is not down. */
  onAnswered(index: number): void {
    const endpoint = this.#endpoints[index]!;
    endpoint.unreachableRounds = 0;
    endpoint.roundTicket = endpoint.admitted;
    endpoint.down = undefined;
  }

  /**
   * The attempt with `ticket` found nothing, or not the API, at the endpoint's address
   * (`isUnreachable`). Returns whether this marked the endpoint down.
   */
  onUnreachable(index: number, ticket: number, failure: VolleyError): boolean {
    const endpoint = this.#endpoints[index]!;
    // On the wire together with an attempt already counted: the same round.
    if (ticket <= endpoint.roundTicket) return false;
    endpoint.roundTicket = endpoint.admitted;
    if (++endpoint.unreachableRounds < this.#breaker.downAfterRounds) return false;
    if (endpoint.down !== undefined) return false;
    endpoint.down = downError(this.#labels[index]!, index, failure);
    if (endpoint.circuit !== 'open') this.#open(index);
    this.#events.emit('endpointDown', { endpoint: index, error: endpoint.down });
    return true;
  }

  /** Takes `index` out of rotation for good (its key or quota cannot serve any call). */
  stop(index: number, error: VolleyError): void {
    const endpoint = this.#endpoints[index]!;
    if (endpoint.stopped !== undefined) return;
    endpoint.stopped = error;
    this.#events.emit('endpointStopped', { endpoint: index, error });
  }

  isStopped(index: number): boolean {
    return this.#endpoints[index]!.stopped !== undefined;
  }

  isDown(index: number): boolean {
    return this.#endpoints[index]!.down !== undefined;
  }

  /** Whether some endpoint is neither stopped nor down. */
  anyUsable(): boolean {
    return this.#endpoints.some((e) => e.stopped === undefined && e.down === undefined);
  }

  /**
   * Why the lowest-numbered endpoint out of use is out (stopped, or down): the cause of a call no
   * endpoint can take.
   */
  unusableCause(): VolleyError | undefined {
    for (const endpoint of this.#endpoints) {
      const cause = endpoint.stopped ?? endpoint.down;
      if (cause !== undefined) return cause;
    }
    return undefined;
  }

  circuit(index: number): CircuitState {
    return this.#endpoints[index]!.circuit;
  }

  /** Forgets every admitted attempt (the runtime abandoned them all) and disarms the wake-up. */
  reset(): void {
    for (const endpoint of this.#endpoints) endpoint.outstanding = 0;
    this.close();
  }

  close(): void {
    if (this.#wakeTimer !== undefined) this.#clock.clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
  }

  #open(index: number): void {
    const endpoint = this.#endpoints[index]!;
    endpoint.circuit = 'open';
    endpoint.openUntil = this.#clock.now() + endpoint.openMs;
    this.#events.emit('endpointUnhealthy', {
      endpoint: index,
      openMs: endpoint.openMs,
      failures: endpoint.consecutiveFailures,
    });
  }

  /** Arms one timer for the moment the first open circuit may take a probe. */
  #armWake(): void {
    if (this.#wakeTimer !== undefined) return;
    let wakeAt = Infinity;
    for (const endpoint of this.#endpoints)
      if (endpoint.circuit === 'open' && endpoint.stopped === undefined)
        wakeAt = Math.min(wakeAt, endpoint.openUntil);
    // A half-open probe in flight wakes the supervisor through its outcome.
    if (wakeAt === Infinity) return;
    this.#wakeTimer = this.#clock.setTimeout(
      () => {
        this.#wakeTimer = undefined;
        this.#onWake();
      },
      Math.max(0, wakeAt - this.#clock.now()),
    );
  }
}

/**
 * The error of a down endpoint, in the words of the issue a user would file: what happened, and
 * where (`connection refused at http://127.0.0.1:9999/v1`, `http://host/v1 answered 501 text/html:
 * not an OpenAI-compatible endpoint?`).
 */
function downError(label: string, index: number, failure: VolleyError): VolleyError {
  const message =
    failure.notApi !== undefined
      ? `${label} answered ${failure.notApi}: not an OpenAI-compatible endpoint? (check the base URL; it usually ends in /v1)`
      : `${failure.message.replace(/^could not connect: /, '')} at ${label}`;
  return new VolleyError(ErrorCode.ENDPOINT_DOWN, message, {
    cause: failure,
    endpoint: index,
    sent: false,
  });
}
