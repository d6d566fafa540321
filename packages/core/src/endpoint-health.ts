/**
 * Endpoint health: which endpoints may take the next attempt, and the circuit breaker that takes
 * a failing one out of rotation.
 *
 *   closed --failureThreshold faults in a row--> open --openMs passed--> half-open (one probe)
 *   half-open --probe succeeds--> closed        half-open --probe faults--> open (openMs × 2, capped)
 *   any --stop(error) (a 401, no quota)--> stopped for good
 *
 * The supervisor asks `choose()` for each attempt it admits and reports what became of it; this
 * class only keeps the books and says when a paused endpoint is worth trying again (`onWake`).
 */
import type { EventEmitter } from 'eventemitter3';
import type { Clock, TimerHandle } from './clock.js';
import type { VolleyError } from './errors.js';
import type { VolleyEvents } from './events.js';

/**
 * An endpoint that fails `failureThreshold` times in a row is taken out of rotation for `openMs`,
 * then tried with one probe; each failed probe doubles the pause, up to `maxOpenMs`.
 */
export interface CircuitBreakerPolicy {
  failureThreshold: number;
  openMs: number;
  maxOpenMs: number;
}

export const defaultCircuitBreaker: CircuitBreakerPolicy = {
  failureThreshold: 5,
  openMs: 2_000,
  maxOpenMs: 60_000,
};

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
}

export class EndpointHealth {
  readonly #endpoints: Endpoint[];
  readonly #breaker: CircuitBreakerPolicy;
  readonly #clock: Clock;
  readonly #events: EventEmitter<VolleyEvents>;
  readonly #onWake: () => void;
  #wakeTimer: TimerHandle | undefined;
  #lastChosen = -1;

  constructor(
    count: number,
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
    this.#endpoints = Array.from({ length: count }, () => ({
      circuit: 'closed',
      consecutiveFailures: 0,
      openUntil: 0,
      openMs: breaker.openMs,
      probing: false,
      outstanding: 0,
      stopped: undefined,
    }));
  }

  get count(): number {
    return this.#endpoints.length;
  }

  /**
   * Least outstanding attempts among the endpoints in rotation: not stopped, circuit not open (a
   * half-open one takes a single probe). `undefined` when every endpoint is stopped;
   * `WAIT_FOR_CIRCUIT` when some will come back (a wake-up is armed for the first of them).
   */
  choose(): number | undefined | typeof WAIT_FOR_CIRCUIT {
    const now = this.#clock.now();
    const count = this.#endpoints.length;
    let best: number | undefined;
    let waiting = false;
    // Start after the last choice so ties rotate instead of always landing on endpoint 0.
    for (let k = 1; k <= count; k++) {
      const i = (this.#lastChosen + k) % count;
      const endpoint = this.#endpoints[i]!;
      if (endpoint.stopped !== undefined) continue;
      if (endpoint.circuit === 'open' && now >= endpoint.openUntil) {
        endpoint.circuit = 'half-open';
        endpoint.probing = false;
      }
      if (endpoint.circuit === 'open' || (endpoint.circuit === 'half-open' && endpoint.probing)) {
        waiting = true;
        continue;
      }
      if (best === undefined || endpoint.outstanding < this.#endpoints[best]!.outstanding) best = i;
    }
    if (best !== undefined) return best;
    if (!waiting) return undefined;
    this.#armWake();
    return WAIT_FOR_CIRCUIT;
  }

  /** An attempt was admitted to `index`. Returns whether it is the probe of a half-open circuit. */
  admit(index: number): boolean {
    this.#lastChosen = index;
    const endpoint = this.#endpoints[index]!;
    endpoint.outstanding++;
    const isProbe = endpoint.circuit === 'half-open';
    if (isProbe) endpoint.probing = true;
    return isProbe;
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
    const wasDown = endpoint.circuit !== 'closed';
    endpoint.circuit = 'closed';
    endpoint.consecutiveFailures = 0;
    endpoint.openMs = this.#breaker.openMs;
    endpoint.probing = false;
    if (wasDown) this.#events.emit('endpointHealthy', { endpoint: index });
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

  /** Why the lowest-numbered stopped endpoint stopped: the cause of a call no endpoint can take. */
  firstStopCause(): VolleyError | undefined {
    return this.#endpoints.find((endpoint) => endpoint.stopped !== undefined)?.stopped;
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
