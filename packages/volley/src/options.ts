/**
 * Options for `createVolley`, validated once here at the edge: nothing downstream re-checks them.
 * Every error names the option path, e.g. `options.endpoints[1].rpm must be a positive number`.
 */

import { availableParallelism } from 'node:os';
import type { ClusterOptions, GroupIdentity } from '@volley/cluster';
import type {
  AdaptiveLimitPolicy,
  BackoffPolicy,
  CircuitBreakerPolicy,
  EndpointConfig,
  EndpointPolicy,
  HedgePolicy,
  LaneLimits,
  Logger,
  RestartBudget,
} from '@volley/core';
import {
  defaultAdaptiveLimitPolicy,
  defaultBackoffPolicy,
  defaultCircuitBreaker,
  defaultHedgePolicy,
  ErrorCode,
  registerHeaderSecrets,
  registerSecret,
  VolleyError,
} from '@volley/core';
import type { SimulatorOptions } from '@volley/sim';
import type { MetricsOption } from './metrics.js';

export type VolleyMode = 'threads' | 'async' | 'auto';

export interface EndpointOptions {
  /** OpenAI SDK convention, e.g. `http://localhost:11434/v1` or `https://api.openai.com/v1`. */
  baseUrl: string;
  /** The key itself. Prefer `apiKeyEnv`, so keys stay out of code. */
  apiKey?: string;
  /** Environment variable holding the key. Defaults to `OPENAI_API_KEY` when that is set. */
  apiKeyEnv?: string;
  /**
   * How the key is sent: `'bearer'` (`Authorization: Bearer <key>`, OpenAI and most servers) or
   * `'api-key'` (the `api-key` header, Azure OpenAI). Default: `'api-key'` for hosts under
   * `openai.azure.com` and `cognitiveservices.azure.com`, else `'bearer'`.
   */
  auth?: 'bearer' | 'api-key';
  /**
   * Extra headers sent with every request to this endpoint (gateways, `OpenAI-Organization`,
   * ...). A header named here replaces Volley's own of that name, credentials included; values of
   * `Authorization`, `api-key` and `x-api-key` are kept out of logs and errors like the key.
   */
  headers?: Record<string, string>;
  /** Requests per minute this endpoint allows. */
  rpm?: number;
  /** Tokens per minute this endpoint allows (prompt + completion). */
  tpm?: number;
  /**
   * Requests in flight at once: slot capacity of a local server (vLLM, llama.cpp, Ollama). Such
   * an endpoint's 503 ("queue full") is backpressure: the call waits, it is not a failure.
   */
  maxInFlight?: number;
  /**
   * `'auto'`: this endpoint's concurrency adapts to what its server can take (README,
   * "Concurrency auto"), under `maxInFlight` and the runtime's `concurrency`. Set on every endpoint
   * by the runtime's `concurrency: 'auto'`.
   */
  concurrency?: 'auto';
  /** Limits of models that differ from the endpoint's, e.g. `{ 'gpt-4o': { rpm: 500, tpm: 30000 } }`. */
  models?: Record<string, { rpm?: number; tpm?: number }>;
  /** Plain http is refused for hosts other than loopback unless this is set (keys would travel in clear). */
  allowInsecureHttp?: boolean;
  /**
   * With `cluster`: the name of the shared bucket of this endpoint's limits (letters, digits,
   * `.`, `_`, `-`), for endpoints that share a limit without sharing origin and key. By default
   * a bucket is named by the origin, the model and a fingerprint of the API key.
   */
  limitGroup?: string;
}

export interface VolleyOptions {
  /**
   * `async` runs the worker actor on the main event loop; `threads` runs a Piscina pool of worker
   * threads; `auto` has both and sends each request where it runs best (float-JSON embedding
   * responses of 48 KiB or more to threads, everything else to the loop; see auto-mode.ts).
   * Results are identical; which is faster depends on the workload (see benchmarks/).
   */
  mode?: VolleyMode;
  /** Endpoints to spread calls over. Default: `OPENAI_BASE_URL`, else the embedded simulator. */
  endpoints?: EndpointOptions[];
  /** Model used when a request names none. */
  model?: string;
  /**
   * Attempts in flight at once, across all endpoints; `'auto'` gives each endpoint a limit of its
   * own that adapts to its server (README, "Concurrency auto").
   */
  concurrency?: number | 'auto';
  /**
   * With `concurrency: 'auto'`: read load hints (`/metrics`, `/slots`, `/props`) from each
   * adaptive endpoint's origin. Default true; a server without them is left alone after a few tries.
   */
  serverHints?: boolean;
  /**
   * Hedging for tail latency, off by default: an attempt that has received nothing for longer than
   * `percentile` of its endpoint's time to first byte gets a copy on another endpoint; the first to
   * answer wins, the other is cancelled. Copies stay within `budget` (a fraction of attempts) and
   * are counted in `stats().hedgedCalls` and `extraBilledCalls`: the provider may bill both.
   * `true` takes the defaults ({@link defaultHedgePolicy}: p99, 2%, 20 ms, 100 samples). Needs two
   * endpoints or more. README, "Hedging".
   *
   * @example
   * createVolley({ endpoints: [{ baseUrl: a }, { baseUrl: b }], hedge: { budget: 0.01 } });
   */
  hedge?: boolean | Partial<HedgePolicy>;
  /**
   * Worker threads in `threads` mode, at most {@link maxThreads} (4 × the cores, never above 64).
   * More than the cores never helped (research/perf-lab.md). Default {@link defaultThreads}: one
   * core left to the main loop, at most 2 (1 on 2 cores).
   */
  threads?: number;
  /** Retries per call after the first attempt. */
  maxRetries?: number;
  /** Retries of attempts that may have been processed already (sent, then the connection died). */
  maxAmbiguousRetries?: number;
  /** Total budget of one call across all its attempts. */
  timeoutMs?: number;
  /** Budget of one attempt. Defaults to `timeoutMs`. */
  attemptTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Longest wait for response headers. Defaults to the attempt budget (not undici's 300 s). */
  headersTimeoutMs?: number;
  /** Longest silence between body chunks or stream events. */
  idleTimeoutMs?: number;
  /** Longest `retry-after` honoured; longer hints are cut to this. */
  retryAfterCapMs?: number;
  backoff?: Partial<BackoffPolicy>;
  /** Calls waiting for a slot before `isSaturated` turns true. */
  maxQueue?: number;
  /** Cap on one response body (JSON) or one stream (SSE). */
  maxResponseBytes?: number;
  /**
   * Memory that answers being read may take at once, across threads (default 1 GiB). Answers over
   * 4 MiB read on only while they fit (`maxResponseBytes` each); the others pause until one ends.
   */
  answerMemoryBytes?: number;
  restartBudget?: Partial<RestartBudget>;
  /** When an endpoint that keeps failing is taken out of rotation, and for how long. */
  circuitBreaker?: Partial<CircuitBreakerPolicy>;
  /** How often `progress` events fire while someone listens. */
  progressIntervalMs?: number;
  /**
   * A pino logger for what the runtime decides: endpoint stopped or down (warn), circuit opened,
   * limits learned from headers (info), retries and failed calls (debug). Lines name endpoints by
   * origin and path with the model (README, "Logs").
   * Default: JSON lines on stderr at `VOLLEY_LOG_LEVEL` (default `warn`); `false` silences it.
   * Keys are redacted and scrubbed from every message either way.
   */
  logger?: Logger | false;
  /**
   * Options for the embedded simulator, used when no endpoint is configured: scripted answers
   * (`script`), latency, limits, faults. This is how to test a pipeline without a model.
   */
  simulator?: SimulatorOptions;
  /**
   * Share the rate limits of these endpoints with every other process given the same Redis:
   * `{ url: 'redis://host:6379' }`, plus tuning (see `@volley/cluster`). Defaults to
   * `VOLLEY_CLUSTER_URL` when that is set; `false` turns it off even then.
   */
  cluster?: ClusterOptions | false;
  /**
   * Prometheus metrics (prom-client): `true` gives the runtime a registry of its own, read with
   * `await volley.metrics.metrics()`; `{ registry }` adds them to an application's registry. Off
   * by default: then no listener is attached and nothing is counted twice.
   */
  metrics?: MetricsOption;
}

export interface ResolvedOptions {
  mode: VolleyMode;
  endpoints: EndpointConfig[];
  /** Large answers each executor reads at once (WorkerConfig.largeAnswerSlots). */
  largeAnswerSlots: number;
  /** Token-bucket lanes: one per endpoint (index = endpoint), then one per model with limits. */
  limits: LaneLimits[];
  policies: EndpointPolicy[];
  circuitBreaker: CircuitBreakerPolicy;
  model: string | undefined;
  /** The bound across all endpoints (with `'auto'`, the sum of the adaptive limits' maxima). */
  concurrency: number;
  /** Per endpoint: the adaptive limit's policy with `concurrency: 'auto'`, else `undefined`. */
  adaptive: Array<AdaptiveLimitPolicy | undefined>;
  serverHints: boolean;
  /** Hedging's policy, or `undefined` when off (the default). */
  hedge: HedgePolicy | undefined;
  threads: number;
  maxRetries: number;
  maxAmbiguousRetries: number;
  timeoutMs: number;
  attemptTimeoutMs: number;
  retryAfterCapMs: number;
  backoff: BackoffPolicy;
  maxQueue: number;
  restartBudget: RestartBudget;
  progressIntervalMs: number;
  /** Set when limits are shared; its fields are checked by `@volley/cluster` when it connects. */
  cluster: ClusterOptions | undefined;
  /** What names the shared bucket of each lane (same order as `limits`). */
  laneIdentities: Array<GroupIdentity & { option: string }>;
}

/** Default `timeoutMs`: a call's whole deadline, across retries and waits for rate limits. */
export const DEFAULT_TIMEOUT_MS = 600_000;

const DEFAULTS = {
  concurrency: 64,
  maxRetries: 5,
  maxAmbiguousRetries: 2,
  timeoutMs: DEFAULT_TIMEOUT_MS,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 120_000,
  retryAfterCapMs: 60_000,
  maxQueue: 100_000,
  maxResponseBytes: 64 * 1024 * 1024,
  answerMemoryBytes: 1024 * 1024 * 1024,
  restartBudget: { maxRestarts: 5, windowMs: 60_000 },
  progressIntervalMs: 1000,
} as const;

/**
 * Worker threads in `threads` mode when the caller does not say: one core is left to the main
 * loop (supervisor, API, the boundary: ~20% of a request's CPU) and to the kernel's network
 * work, and at most 2 threads, as before (more than the cores never helped, research/perf-lab.md;
 * beyond 2 cores nothing is measured yet). So 1 thread on 1 or 2 cores, 2 from 3 cores up.
 *
 * Measured on 2 cores, a shared and loaded box (benchmarks/results/baseline-threads-2026-12-07-s2.md):
 * against nginx at C=256 one thread cost 0.90x (before) and 0.88x (after) async's client CPU per
 * request, two threads 1.45x and 1.27x; at C=1024 with 20 ms latency, paired runs gave one
 * thread 1.20x async's req/s (1.08-1.32) and two 1.26x (0.97-1.33) at 15% more CPU per request.
 * On 2 cores with the server beside it, the second thread mostly competes with the main loop.
 */
export function defaultThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(2, cores - 1));
}

/** The most worker threads ever allowed, whatever the machine: each costs tens of MB and start-up time. */
export const MAX_THREADS_HARD_LIMIT = 64;

/**
 * The most worker threads a run may ask for: 4 × the available parallelism, at most
 * {@link MAX_THREADS_HARD_LIMIT}. Threads beyond the cores only compete for them, and each costs
 * memory and start-up time: 200 threads took 12 s and 3.6 GB before a request was sent.
 *
 * @example
 * if (threads > maxThreads().limit) throw new Error(`--threads ${maxThreads().reason}`);
 */
export function maxThreads(cores = availableParallelism()): { limit: number; reason: string } {
  const limit = Math.min(MAX_THREADS_HARD_LIMIT, 4 * cores);
  return {
    limit,
    reason: `must be at most ${limit} (4 × ${cores} available cores, hard maximum ${MAX_THREADS_HARD_LIMIT})`,
  };
}

function invalid(message: string): VolleyError {
  return new VolleyError(ErrorCode.INVALID_OPTIONS, message);
}

function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  integer = true,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0) || (integer && !Number.isInteger(value))) {
    throw invalid(
      `${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`,
    );
  }
  return value;
}

function nonNegativeInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0)
    throw invalid(`${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}

function rateLimits(name: string, limits: { rpm?: number; tpm?: number }): LaneLimits {
  const lane: LaneLimits = {};
  if (limits.rpm !== undefined) lane.rpm = positive(`${name}.rpm`, limits.rpm, 0, false);
  if (limits.tpm !== undefined) lane.tpm = positive(`${name}.tpm`, limits.tpm, 0, false);
  return lane;
}

/** Header names and values undici would refuse (or that would split a request): refused here, by name. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function checkHeaders(name: string, headers: Record<string, string>): Record<string, string> {
  const checked: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(key))
      throw invalid(`${name} has an invalid header name ${JSON.stringify(key)}`);
    if (typeof value !== 'string' || /[\r\n\0]/.test(value))
      throw invalid(`${name}[${JSON.stringify(key)}] must be a string without line breaks`);
    checked[key] = value;
  }
  return checked;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function checkBaseUrl(name: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`${name} is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid(`${name} must be http(s), got ${url.protocol}`);
  if (url.username !== '' || url.password !== '')
    throw invalid(`${name} must not carry credentials; use apiKeyEnv`);
  return url;
}

/** True for loopback hosts, where plain http is expected (local model servers, the simulator). */
export function isLoopback(url: URL): boolean {
  return LOOPBACK.has(url.hostname) || url.hostname.startsWith('127.');
}

export function resolveOptions(
  options: VolleyOptions,
  endpoints: EndpointOptions[],
): ResolvedOptions {
  const mode = options.mode ?? 'async';
  if (mode !== 'threads' && mode !== 'async' && mode !== 'auto')
    throw invalid(`options.mode must be 'threads', 'async' or 'auto', got ${String(mode)}`);
  if (endpoints.length === 0) throw invalid('options.endpoints must not be empty');
  const allAuto = options.concurrency === 'auto';
  const adaptive = endpoints.map((endpoint, i) => {
    const name = `options.endpoints[${i}]`;
    if (endpoint.concurrency !== undefined && endpoint.concurrency !== 'auto')
      throw invalid(`${name}.concurrency must be 'auto', got ${String(endpoint.concurrency)}`);
    if (!allAuto && endpoint.concurrency !== 'auto') return undefined;
    const max = positive(
      `${name}.maxInFlight`,
      endpoint.maxInFlight,
      defaultAdaptiveLimitPolicy.max,
    );
    return {
      ...defaultAdaptiveLimitPolicy,
      max,
      initial: Math.min(defaultAdaptiveLimitPolicy.initial, max),
    };
  });
  const concurrency = allAuto
    ? adaptive.reduce((sum, policy) => sum + (policy?.max ?? 0), 0)
    : positive(
        'options.concurrency',
        options.concurrency as number | undefined,
        DEFAULTS.concurrency,
      );
  const threads = positive('options.threads', options.threads, defaultThreads());
  const threadCap = maxThreads();
  if (threads > threadCap.limit)
    throw invalid(`options.threads ${threadCap.reason}, got ${threads}`);
  const timeoutMs = positive('options.timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs);
  const attemptTimeoutMs = positive(
    'options.attemptTimeoutMs',
    options.attemptTimeoutMs,
    timeoutMs,
  );
  const connectTimeoutMs = positive(
    'options.connectTimeoutMs',
    options.connectTimeoutMs,
    DEFAULTS.connectTimeoutMs,
  );
  const headersTimeoutMs = positive(
    'options.headersTimeoutMs',
    options.headersTimeoutMs,
    attemptTimeoutMs,
  );
  const idleTimeoutMs = positive(
    'options.idleTimeoutMs',
    options.idleTimeoutMs,
    DEFAULTS.idleTimeoutMs,
  );
  const maxResponseBytes = positive(
    'options.maxResponseBytes',
    options.maxResponseBytes,
    DEFAULTS.maxResponseBytes,
  );
  const answerMemoryBytes = positive(
    'options.answerMemoryBytes',
    options.answerMemoryBytes,
    DEFAULTS.answerMemoryBytes,
  );
  // Every executor (one per thread, plus the main loop's in `auto`) gets its share of the budget.
  const executors = mode === 'async' ? 1 : mode === 'threads' ? threads : threads + 1;
  const largeAnswerSlots = Math.max(
    1,
    Math.floor(answerMemoryBytes / executors / maxResponseBytes),
  );
  // Spread each endpoint's sockets over the threads that use it, with slack for reconnects.
  // In `auto` a thread may carry most of the load, so each gets the full share.
  const connectionsPerWorker = Math.ceil(concurrency / (mode === 'threads' ? threads : 1)) + 4;

  const limits: LaneLimits[] = [];
  const extraLanes: LaneLimits[] = [];
  const identities: Array<GroupIdentity & { option: string }> = [];
  const extraIdentities: Array<GroupIdentity & { option: string }> = [];
  const policies: EndpointPolicy[] = [];
  const configs = endpoints.map((endpoint, i): EndpointConfig => {
    const name = `options.endpoints[${i}]`;
    const url = checkBaseUrl(`${name}.baseUrl`, endpoint.baseUrl);
    if (url.protocol === 'http:' && !isLoopback(url) && endpoint.allowInsecureHttp !== true) {
      throw invalid(
        `${name}.baseUrl uses plain http to a non-loopback host; set allowInsecureHttp to allow it`,
      );
    }
    const lane: LaneLimits = rateLimits(name, endpoint);
    if (endpoint.maxInFlight !== undefined)
      lane.maxInFlight = positive(`${name}.maxInFlight`, endpoint.maxInFlight, 0);
    limits[i] = lane;
    const policy: EndpointPolicy = {
      label: endpoint.baseUrl,
      lane: i,
      // An adaptive endpoint's 503 is load shed too: its limit is cut and the call waits.
      slots: endpoint.maxInFlight !== undefined || adaptive[i] !== undefined,
    };
    const models = Object.entries(endpoint.models ?? {});
    if (models.length > 0) {
      const modelLanes = new Map<string, number>();
      for (const [model, modelLimits] of models) {
        // A model lane shares the endpoint's slot cap: slots belong to the server, not the model.
        const modelLane = rateLimits(`${name}.models[${JSON.stringify(model)}]`, modelLimits);
        if (lane.maxInFlight !== undefined) modelLane.maxInFlight = lane.maxInFlight;
        modelLanes.set(model, endpoints.length + extraLanes.length);
        extraLanes.push(modelLane);
      }
      policy.modelLanes = modelLanes;
    }
    policies.push(policy);
    const apiKey = endpoint.apiKey ?? process.env[endpoint.apiKeyEnv ?? 'OPENAI_API_KEY'];
    if (endpoint.apiKeyEnv !== undefined && apiKey === undefined) {
      throw invalid(`${name}.apiKeyEnv names ${endpoint.apiKeyEnv}, which is not set`);
    }
    const identity = { baseUrl: endpoint.baseUrl, apiKey, limitGroup: endpoint.limitGroup };
    identities[i] = { ...identity, model: undefined, option: name };
    for (const [model] of models) extraIdentities.push({ ...identity, model, option: name });
    registerSecret(apiKey);
    const config: EndpointConfig = {
      baseUrl: endpoint.baseUrl,
      connections: connectionsPerWorker,
      connectTimeoutMs,
      headersTimeoutMs,
      idleTimeoutMs,
      maxResponseBytes,
    };
    if (apiKey !== undefined && apiKey !== '') config.apiKey = apiKey;
    if (endpoint.auth !== undefined) {
      if (endpoint.auth !== 'bearer' && endpoint.auth !== 'api-key')
        throw invalid(`${name}.auth must be 'bearer' or 'api-key', got ${String(endpoint.auth)}`);
      config.auth = endpoint.auth;
    }
    if (endpoint.headers !== undefined) {
      config.headers = checkHeaders(`${name}.headers`, endpoint.headers);
      registerHeaderSecrets(config.headers);
    }
    return config;
  });

  const backoff = { ...defaultBackoffPolicy, ...options.backoff };
  positive('options.backoff.baseDelayMs', backoff.baseDelayMs, 1, false);
  positive('options.backoff.maxDelayMs', backoff.maxDelayMs, 1, false);

  return {
    mode,
    endpoints: configs,
    largeAnswerSlots,
    limits: [...limits, ...extraLanes],
    policies,
    circuitBreaker: {
      failureThreshold: positive(
        'options.circuitBreaker.failureThreshold',
        options.circuitBreaker?.failureThreshold,
        defaultCircuitBreaker.failureThreshold,
      ),
      openMs: positive(
        'options.circuitBreaker.openMs',
        options.circuitBreaker?.openMs,
        defaultCircuitBreaker.openMs,
      ),
      maxOpenMs: positive(
        'options.circuitBreaker.maxOpenMs',
        options.circuitBreaker?.maxOpenMs,
        defaultCircuitBreaker.maxOpenMs,
      ),
      downAfterRounds: positive(
        'options.circuitBreaker.downAfterRounds',
        options.circuitBreaker?.downAfterRounds,
        defaultCircuitBreaker.downAfterRounds,
      ),
    },
    model: options.model,
    concurrency,
    adaptive,
    serverHints: options.serverHints !== false,
    hedge: hedgeOf(options.hedge, configs.length),
    threads,
    maxRetries: nonNegativeInt('options.maxRetries', options.maxRetries, DEFAULTS.maxRetries),
    maxAmbiguousRetries: nonNegativeInt(
      'options.maxAmbiguousRetries',
      options.maxAmbiguousRetries,
      DEFAULTS.maxAmbiguousRetries,
    ),
    timeoutMs,
    attemptTimeoutMs,
    retryAfterCapMs: positive(
      'options.retryAfterCapMs',
      options.retryAfterCapMs,
      DEFAULTS.retryAfterCapMs,
    ),
    backoff,
    maxQueue: positive('options.maxQueue', options.maxQueue, DEFAULTS.maxQueue),
    restartBudget: {
      maxRestarts: nonNegativeInt(
        'options.restartBudget.maxRestarts',
        options.restartBudget?.maxRestarts,
        DEFAULTS.restartBudget.maxRestarts,
      ),
      windowMs: positive(
        'options.restartBudget.windowMs',
        options.restartBudget?.windowMs,
        DEFAULTS.restartBudget.windowMs,
      ),
    },
    progressIntervalMs: positive(
      'options.progressIntervalMs',
      options.progressIntervalMs,
      DEFAULTS.progressIntervalMs,
    ),
    cluster: clusterOf(options.cluster),
    laneIdentities: [...identities, ...extraIdentities],
  };
}

/** `options.cluster`, else `VOLLEY_CLUSTER_URL`; `false` is off. */
function clusterOf(cluster: ClusterOptions | false | undefined): ClusterOptions | undefined {
  if (cluster === false) return undefined;
  if (cluster !== undefined) {
    if (typeof cluster !== 'object' || cluster === null)
      throw invalid('options.cluster must be an object such as { url: "redis://host:6379" }');
    return cluster;
  }
  const url = process.env.VOLLEY_CLUSTER_URL;
  return url === undefined || url === '' ? undefined : { url };
}

/** `options.hedge`: off unless asked for, and only with another endpoint to send copies to. */
function hedgeOf(
  hedge: boolean | Partial<HedgePolicy> | undefined,
  endpointCount: number,
): HedgePolicy | undefined {
  if (hedge === undefined || hedge === false) return undefined;
  if (hedge !== true && (typeof hedge !== 'object' || hedge === null))
    throw invalid('options.hedge must be true, false or an object such as { budget: 0.02 }');
  if (endpointCount < 2)
    throw invalid('options.hedge needs at least two endpoints: a copy goes to another one');
  const given = hedge === true ? {} : hedge;
  const policy: HedgePolicy = {
    percentile: fraction(
      'options.hedge.percentile',
      given.percentile,
      defaultHedgePolicy.percentile,
    ),
    budget: fraction('options.hedge.budget', given.budget, defaultHedgePolicy.budget),
    minDelayMs: given.minDelayMs ?? defaultHedgePolicy.minDelayMs,
    minSamples: nonNegativeInt(
      'options.hedge.minSamples',
      given.minSamples,
      defaultHedgePolicy.minSamples,
    ),
  };
  if (typeof policy.minDelayMs !== 'number' || !(policy.minDelayMs >= 0))
    throw invalid(
      `options.hedge.minDelayMs must be a number >= 0, got ${String(policy.minDelayMs)}`,
    );
  return policy;
}

/** A number in (0, 1). */
function fraction(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value < 1))
    throw invalid(`${name} must be a number between 0 and 1 (exclusive), got ${String(value)}`);
  return value;
}
