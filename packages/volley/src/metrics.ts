/**
 * Prometheus metrics of one runtime (`createVolley({ metrics: true })`, then `volley.metrics`).
 *
 * Everything is read on the main thread, where the supervisor sees every attempt's outcome:
 * counters come from its events (`request`, `retry`, `rateLimited`, `complete`, `fail`), gauges
 * and a few counters from `stats()` and the token bucket's `limiterStats()` at scrape time. In
 * threads mode the numbers of every thread are therefore merged by construction, never sampled
 * from one.
 *
 * Labels: `endpoint` is the base URL's origin (scheme, host, port: never a path, a query or
 * credentials), `model` the request's model, `outcome` `success` or a `VOLLEY_ERR_*` code. No
 * label ever carries a key.
 */

import type {
  AttemptEvent,
  CompleteEvent,
  FailEvent,
  LaneStats,
  RetryEvent,
  RuntimeStats,
  VolleyEvents,
} from '@volley/core';
import type { EventEmitter } from 'eventemitter3';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** `createVolley({ metrics })`: `true` for a registry of its own, or a registry to add to. */
export type MetricsOption = boolean | { registry: Registry };

/** What the metrics read: the runtime's events and its two stats snapshots. */
export interface MetricsSource {
  events: EventEmitter<VolleyEvents>;
  stats: () => RuntimeStats;
  limiterStats: () => Promise<LaneStats[]>;
  /** Base URLs, in endpoint order. */
  endpoints: readonly string[];
  /** Token-bucket lanes, in lane order: whose limits each one holds. */
  lanes: ReadonlyArray<{ endpoint: number; model: string | undefined }>;
}

/** Latency of LLM calls: tens of milliseconds (a cache, a small model) to minutes (long outputs). */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The label of a call that ended before any attempt (no endpoint took it). */
const NO_ENDPOINT = '';

/**
 * Registers Volley's metrics in `registry` (a new one by default) and keeps them up to date from
 * `source`. Returns the registry: `await registry.metrics()` is the Prometheus text.
 */
export function createMetrics(
  source: MetricsSource,
  registry: Registry = new Registry(),
): Registry {
  const origins = source.endpoints.map(originOf);
  const registers = [registry];
  const endpointOf = (event: AttemptEvent): string =>
    event.attempt === 0 ? NO_ENDPOINT : (origins[event.endpoint] ?? NO_ENDPOINT);

  const requests = new Counter({
    name: 'volley_requests_total',
    help: 'Calls ended, by outcome: success, or the error code the call failed with (one per call, whatever its attempts).',
    labelNames: ['endpoint', 'model', 'outcome'] as const,
    registers,
    collect: () => syncTallies(),
  });
  const attempts = new Counter({
    name: 'volley_attempts_total',
    help: 'Attempts sent to an endpoint (a call with retries makes several).',
    labelNames: ['endpoint', 'model'] as const,
    registers,
    collect: () => syncTallies(),
  });
  const tokens = new Counter({
    name: 'volley_tokens_total',
    help: 'Tokens of successful calls as the server reported them; direction is input (prompt) or output (completion).',
    labelNames: ['endpoint', 'model', 'direction'] as const,
    registers,
    collect: () => syncTallies(),
  });
  const duration = new Histogram({
    name: 'volley_request_duration_seconds',
    help: 'Latency of successful calls: their last attempt, from sending to the whole answer.',
    labelNames: ['endpoint', 'model'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const ttft = new Histogram({
    name: 'volley_time_to_first_token_seconds',
    help: 'Time to first token of successful streamed calls.',
    labelNames: ['endpoint', 'model'] as const,
    buckets: TTFT_BUCKETS,
    registers,
  });
  const retries = new Counter({
    name: 'volley_retries_total',
    help: 'Attempts that failed and were retried, by the error code of the failed attempt.',
    labelNames: ['endpoint', 'code'] as const,
    registers,
  });
  const errors = new Counter({
    name: 'volley_errors_total',
    help: 'Errors by code: attempts that failed and were retried, and calls that failed.',
    labelNames: ['endpoint', 'code'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'volley_rate_limited_total',
    help: '429 answers (the endpoint then cools down).',
    labelNames: ['endpoint'] as const,
    registers,
  });

  // Hot path: an attempt or a success adds to plain numbers of its endpoint and model; they
  // reach the counters when scraped (prom-client's own inc() costs a label lookup each time).
  const tallies = new Map<string, CallTally>();
  const tallyOf = (endpoint: string, model: string): CallTally => {
    const key = `${endpoint}\u0000${model}`;
    let found = tallies.get(key);
    if (found === undefined) {
      found = {
        endpoint,
        model,
        duration: duration.labels(endpoint, model),
        ttft: ttft.labels(endpoint, model),
        now: { attempts: 0, successes: 0, input: 0, output: 0 },
        synced: { attempts: 0, successes: 0, input: 0, output: 0 },
      };
      tallies.set(key, found);
    }
    return found;
  };
  const syncTallies = (): void => {
    for (const { endpoint, model, now, synced } of tallies.values()) {
      attempts.inc({ endpoint, model }, now.attempts - synced.attempts);
      requests.inc({ endpoint, model, outcome: 'success' }, now.successes - synced.successes);
      tokens.inc({ endpoint, model, direction: 'input' }, now.input - synced.input);
      tokens.inc({ endpoint, model, direction: 'output' }, now.output - synced.output);
      Object.assign(synced, now);
    }
  };

  source.events.on('request', (event: AttemptEvent) => {
    tallyOf(endpointOf(event), event.model ?? '').now.attempts++;
  });
  source.events.on('complete', (event: CompleteEvent) => {
    const tally = tallyOf(endpointOf(event), event.model ?? '');
    tally.now.successes++;
    tally.duration.observe(event.latencyMs / 1000);
    if (event.ttftMs !== undefined) tally.ttft.observe(event.ttftMs / 1000);
    if (event.usage !== undefined) {
      tally.now.input += event.usage.prompt_tokens;
      tally.now.output += event.usage.completion_tokens ?? 0;
    }
  });
  source.events.on('fail', (event: FailEvent) => {
    const endpoint = endpointOf(event);
    requests.labels(endpoint, event.model ?? '', event.error.code).inc();
    errors.labels(endpoint, event.error.code).inc();
  });
  source.events.on('retry', (event: RetryEvent) => {
    const endpoint = endpointOf(event);
    retries.labels(endpoint, event.error.code).inc();
    errors.labels(endpoint, event.error.code).inc();
  });
  source.events.on('rateLimited', (event) => {
    rateLimited.labels(endpointOf(event)).inc();
  });

  registerStatsMetrics(source, origins, registers);
  registerLimiterMetrics(source, origins, registers);
  return registry;
}

interface Tally {
  attempts: number;
  successes: number;
  input: number;
  output: number;
}

/** What one endpoint and model has counted so far, and how much of it the counters hold. */
interface CallTally {
  endpoint: string;
  model: string;
  duration: Histogram.Internal<string>;
  ttft: Histogram.Internal<string>;
  now: Tally;
  synced: Tally;
}

/** Gauges and counters read off `stats()` when scraped. */
function registerStatsMetrics(
  source: MetricsSource,
  origins: readonly string[],
  registers: Registry[],
): void {
  new Gauge({
    name: 'volley_in_flight',
    help: 'Attempts on the wire now.',
    labelNames: ['endpoint'] as const,
    registers,
    collect() {
      this.reset();
      const { byEndpoint } = source.stats();
      const byOrigin = sumByOrigin(origins, (i) => byEndpoint[i]?.inFlight ?? 0);
      for (const [endpoint, value] of byOrigin) this.labels(endpoint).set(value);
    },
  });
  new Gauge({
    name: 'volley_endpoint_available',
    help: '1 while the endpoint takes calls; 0 when stopped (auth, quota), down, or its circuit is open.',
    labelNames: ['endpoint'] as const,
    registers,
    collect() {
      this.reset();
      const { byEndpoint } = source.stats();
      const available = sumByOrigin(origins, (i) => {
        const endpoint = byEndpoint[i];
        return endpoint !== undefined &&
          !endpoint.stopped &&
          !endpoint.down &&
          endpoint.circuit !== 'open'
          ? 1
          : 0;
      });
      for (const [endpoint, value] of available) this.labels(endpoint).set(value > 0 ? 1 : 0);
    },
  });
  new Gauge({
    name: 'volley_concurrency_limit',
    help: "Attempts an endpoint may hold now, by its adaptive limit (concurrency 'auto').",
    labelNames: ['endpoint'] as const,
    registers,
    collect() {
      this.reset();
      const { byEndpoint } = source.stats();
      const adaptive = new Set(
        origins.filter((_, i) => byEndpoint[i]?.concurrencyLimit !== undefined),
      );
      const limits = sumByOrigin(origins, (i) => byEndpoint[i]?.concurrencyLimit ?? 0);
      for (const [endpoint, value] of limits)
        if (adaptive.has(endpoint)) this.labels(endpoint).set(value);
    },
  });
  const gauges: Array<[string, string, (stats: RuntimeStats) => number]> = [
    ['volley_queued', 'Calls waiting for a concurrency slot now.', (s) => s.queued],
    [
      'volley_waiting_on_rate_limit',
      'Calls waiting for rate-limit capacity now.',
      (s) => s.waitingOnRateLimit,
    ],
    ['volley_backing_off', 'Calls waiting out a retry delay now.', (s) => s.backingOff],
  ];
  for (const [name, help, read] of gauges) {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(source.stats()));
      },
    });
  }
  const counters: Array<[string, string, (stats: RuntimeStats) => number]> = [
    [
      'volley_extra_billed_calls_total',
      'Attempts that may have been processed and billed but whose result was not used.',
      (s) => s.extraBilledCalls,
    ],
    [
      'volley_hedged_calls_total',
      'Copies of silent attempts sent to another endpoint (hedging); each is also an extra billed call.',
      (s) => s.hedgedCalls,
    ],
    [
      'volley_backpressure_total',
      '503s of slot-limited local servers, waited out without counting as failures.',
      (s) => s.backpressure,
    ],
    [
      'volley_rate_limit_wait_seconds_total',
      'Time calls spent waiting for rate-limit capacity, summed over calls.',
      (s) => s.rateLimitWaitMs / 1000,
    ],
    ['volley_worker_restarts_total', 'Worker threads that crashed.', (s) => s.workerRestarts],
  ];
  for (const [name, help, read] of counters)
    mirrorCounter(name, help, registers, () => read(source.stats()));
}

/** Per token-bucket lane: its levels and waits, read off `limiterStats()` when scraped. */
function registerLimiterMetrics(
  source: MetricsSource,
  origins: readonly string[],
  registers: Registry[],
): void {
  const labelsOf = (lane: number): { endpoint: string; model: string } => {
    const owner = source.lanes[lane];
    return { endpoint: origins[owner?.endpoint ?? -1] ?? NO_ENDPOINT, model: owner?.model ?? '' };
  };
  const levels: Array<[string, string, (lane: LaneStats) => number]> = [
    [
      'volley_limiter_available_requests',
      'Requests the rate limiter can admit now (+Inf without a limit).',
      (l) => l.availableRequests,
    ],
    [
      'volley_limiter_available_tokens',
      'Tokens the rate limiter can admit now (+Inf without a limit).',
      (l) => l.availableTokens,
    ],
    ['volley_limiter_waiting', 'Calls queued at the rate limiter now.', (l) => l.waiting],
    [
      'volley_limiter_cooldown_seconds',
      'Time left of a cooldown after a 429.',
      (l) => l.cooldownRemainingMs / 1000,
    ],
  ];
  for (const [name, help, read] of levels) {
    new Gauge({
      name,
      help,
      labelNames: ['endpoint', 'model'] as const,
      registers,
      async collect() {
        this.reset();
        const lanes = await source.limiterStats();
        for (const [i, lane] of lanes.entries()) this.set(labelsOf(i), read(lane));
      },
    });
  }
  const totals: Array<[string, string, (lane: LaneStats) => number]> = [
    [
      'volley_limiter_waits_total',
      'Admissions that had to wait at the rate limiter.',
      (l) => l.waitedGrants,
    ],
    [
      'volley_limiter_wait_seconds_total',
      'Time admissions spent waiting at the rate limiter.',
      (l) => l.totalWaitMs / 1000,
    ],
  ];
  for (const [name, help, read] of totals) {
    new Counter({
      name,
      help,
      labelNames: ['endpoint', 'model'] as const,
      registers,
      async collect() {
        // A lane's total only grows: setting the counter to it is exact.
        this.reset();
        const lanes = await source.limiterStats();
        for (const [i, lane] of lanes.entries()) this.inc(labelsOf(i), read(lane));
      },
    });
  }
}

/** A counter whose value is a running total kept elsewhere, copied when scraped. */
function mirrorCounter(
  name: string,
  help: string,
  registers: Registry[],
  read: () => number,
): void {
  new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** Sums a per-endpoint value over endpoints that share an origin. */
function sumByOrigin(
  origins: readonly string[],
  value: (endpoint: number) => number,
): Map<string, number> {
  const sums = new Map<string, number>();
  for (const [i, origin] of origins.entries()) sums.set(origin, (sums.get(origin) ?? 0) + value(i));
  return sums;
}

/** Scheme, host and port: never a path, a query or credentials. */
function originOf(baseUrl: string): string {
  return URL.canParse(baseUrl) ? new URL(baseUrl).origin : NO_ENDPOINT;
}
