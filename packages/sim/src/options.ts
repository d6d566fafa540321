/**
 * Simulator options: the public shape, and their validation into the resolved form the server
 * reads. Validation happens here, once per `createSimulator` or `setOptions`; the request path
 * never re-checks an option.
 */

import { FAULT_KINDS, type Fault, type FaultKind, FaultPicker, isFaultKind } from './faults.js';
import { normalSample, type Random } from './random.js';

/** A delay in milliseconds: fixed, or drawn per request from a seeded distribution (clamped at 0). */
export type LatencyMs =
  | number
  | { distribution: 'uniform'; minMs: number; maxMs: number }
  | { distribution: 'normal'; meanMs: number; stdDevMs: number }
  | { distribution: 'lognormal'; medianMs: number; sigma: number };

/** How long answers take. The default is no delay at all, and then no timer runs per request. */
export interface LatencyOptions {
  /** Time before response headers (time to first byte). Default 0. */
  headersMs?: LatencyMs | undefined;
  /** Generation speed: paces stream chunks and delays JSON answers by tokens / speed. 0 (default) is instant. */
  tokensPerSecond?: number | undefined;
  /** Each gap between tokens varies by up to this fraction (0..1), seeded. Default 0. */
  interTokenJitter?: number | undefined;
}

/**
 * Per-minute limits. Each is a token bucket refilled continuously at limit/60 per second and
 * holding one second of refill (at least 1): traffic at the limit passes, a burst beyond one
 * second's worth gets 429s. A request costing more than the burst passes only when the bucket is
 * full and leaves a debt later requests wait out.
 */
export interface LimitOptions {
  /** Requests per minute. */
  rpm?: number | undefined;
  /** Tokens per minute, counted at admission as prompt tokens + `max_tokens` × `n` (as OpenAI does). */
  tpm?: number | undefined;
  /**
   * `admission` (default, OpenAI's way): the admission count is final. `usage`: the count is
   * settled against the real usage once the answer is generated (refund or charge), as servers and
   * proxies that meter actual tokens do.
   */
  tokenAccounting?: 'admission' | 'usage' | undefined;
}

/**
 * A model server's engine (continuous batching, as vLLM, llama.cpp and Ollama run it), which then
 * times every chat and completion answer instead of `latency`. See engine.ts for the model and
 * the times it predicts.
 */
export interface EngineOptions {
  /** Sequences decoded together (continuous batching). Requests beyond it wait in the queue. */
  slots: number;
  /** Prefill cost per prompt token, ms (default 0.05). */
  prefillMsPerToken?: number | undefined;
  /** One decode step (one token for every running sequence) with one sequence running, ms (default 10). */
  decodeStepMs?: number | undefined;
  /** Added to each decode step per additional running sequence, ms (default 0.1): decode speed drops as the batch grows. */
  decodeStepMsPerSequence?: number | undefined;
  /** Waiting-queue bound; a request that finds it full is answered 503 at once. Default: unbounded (vLLM's behaviour). */
  maxWaiting?: number | undefined;
  /** Relative jitter (0..1) applied to step and prefill times, seeded by `seed`. Default 0. */
  jitter?: number | undefined;
  /**
   * Tokens one step may process: one per decoding sequence, the rest for prompt chunks (vLLM's
   * `max_num_batched_tokens`); a prompt that does not fit is prefilled over several steps.
   * At least `slots`. Default: the larger of 2048 (vLLM's default) and `slots`.
   */
  maxBatchedTokens?: number | undefined;
}

/** Seeded random faults and outages. */
export interface FaultOptions {
  /** Probability (0..1) that a request gets a fault. Default 0. */
  rate?: number | undefined;
  /** Relative weights of the kinds drawn when a request gets a fault. Required when `rate > 0`. */
  kinds?: Partial<Record<FaultKind, number>> | undefined;
  /** Every request fails with `outageKind` for this long after these options are applied. */
  outageMs?: number | undefined;
  /** The fault an outage injects. Default `status-503`. */
  outageKind?: FaultKind | undefined;
  /** `status-429` faults: the retry hint. Default 1000. */
  retryAfterMs?: number | undefined;
  /** `slow-headers` and `slow-body` faults: the pause. Default 5000. */
  slowMs?: number | undefined;
  /** `stall-stream` faults: period of `: ping` comments while stalled; 0 (default) sends none. */
  keepaliveMs?: number | undefined;
}

/** What `faultFor` sees: `index` is the request's `seq` in the log (0-based arrival order). */
export interface FaultRequest {
  path: string;
  body: unknown;
  index: number;
}

/** What `script` sees for each choice of a chat or completion request. */
export interface ScriptRequest {
  path: string;
  // biome-ignore lint/suspicious/noExplicitAny: scripts read the request shape they sent themselves.
  body: any;
  choiceIndex: number;
}

/**
 * Options for {@link createSimulator}. All are optional; `undefined` means the default, and in
 * `setOptions` it restores the default.
 */
export interface SimulatorOptions {
  /** TCP port; 0 (default) picks a free one. Fixed once listening. */
  port?: number | undefined;
  /** Interface to listen on. Default `127.0.0.1`. Fixed once listening. */
  host?: string | undefined;
  /** Drives seeded faults and latency jitter, never content. Default 1. */
  seed?: number | undefined;
  /** Models listed by `/v1/models`. Default `['volley-sim-1', 'volley-sim-embed-1']`. */
  models?: readonly string[] | undefined;
  /** Serve any model name; when false, unknown models get 404 `model_not_found`. Default true. */
  acceptAnyModel?: boolean | undefined;
  /**
   * Time to headers and generation speed. Default: none (no timers at all). With `engine` set it
   * times only the routes the engine does not serve (embeddings, models).
   */
  latency?: LatencyOptions | undefined;
  /**
   * A server model: slots, a waiting queue, prefill and batched decode steps time every chat and
   * completion answer, each answer runs to `max_tokens`, and `/metrics`, `/slots`, `/props` and
   * `/sim/engine` report its state. Default: none (answers timed by `latency`).
   */
  engine?: EngineOptions | undefined;
  /** RPM/TPM limits answered with OpenAI-style 429s and `x-ratelimit-*` headers. Default: none. */
  limits?: LimitOptions | undefined;
  /** Seeded random faults and outages. Default: none. */
  faults?: FaultOptions | undefined;
  /** In-process hook choosing a fault for a given request; runs after the `x-volley-sim-fault` header. */
  faultFor?: ((request: FaultRequest) => FaultKind | Fault | undefined) | undefined;
  /** Require `Authorization: Bearer <apiKey>`; others get 401 (the key is never echoed). */
  apiKey?: string | undefined;
  /** Embeddings: always answer float arrays, even when base64 was asked for (some servers do). */
  ignoreEncodingFormat?: boolean | undefined;
  /** Embeddings: answer base64 requests with all-zero vectors (a bug some local servers have). */
  zeroBase64Embeddings?: boolean | undefined;
  /** Scripted answer text per choice; `undefined` falls back to generated content. */
  script?: ((request: ScriptRequest) => string | undefined) | undefined;
  /** Request log entries kept (oldest dropped). Default 100 000. Fixed once listening. */
  logCapacity?: number | undefined;
  /** Keep parsed request bodies in the log. Default true. */
  logBodies?: boolean | undefined;
  /** Request bodies above this get 413. Default 32 MiB. */
  maxBodyBytes?: number | undefined;
  /** Epoch milliseconds, read by rate limits and log timestamps; inject a manual clock in tests. */
  clock?: (() => number) | undefined;
}

/** A rejected option: `option` is its path, such as `latency.headersMs`. */
export class SimulatorOptionError extends Error {
  /** Stable code for callers and tests to branch on. */
  readonly code = 'VOLLEY_ERR_SIM_OPTION';
  /** The option's path. */
  readonly option: string;

  constructor(option: string, expected: string, actual: unknown) {
    super(`Invalid simulator option "${option}": expected ${expected}, got ${describe(actual)}`);
    this.name = 'SimulatorOptionError';
    this.option = option;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Engine options after validation, every default filled in. */
export interface ResolvedEngineOptions {
  slots: number;
  prefillMsPerToken: number;
  decodeStepMs: number;
  decodeStepMsPerSequence: number;
  /** `Infinity` when unbounded. */
  maxWaiting: number;
  jitter: number;
  maxBatchedTokens: number;
}

/** Options after validation, with defaults filled in and derived tables built. */
export interface ResolvedOptions {
  port: number;
  host: string;
  seed: number;
  models: readonly string[];
  modelSet: ReadonlySet<string>;
  acceptAnyModel: boolean;
  /** Fixed headers delay; used when `headersSampler` is undefined. */
  headersMs: number;
  headersSampler: ((random: Random) => number) | undefined;
  tokensPerSecond: number;
  interTokenJitter: number;
  engine: ResolvedEngineOptions | undefined;
  rpm: number | undefined;
  tpm: number | undefined;
  tokenAccounting: 'admission' | 'usage';
  faultPicker: FaultPicker;
  outageMs: number;
  outageKind: FaultKind;
  retryAfterMs: number;
  slowMs: number;
  keepaliveMs: number;
  faultFor: SimulatorOptions['faultFor'];
  /** The exact `authorization` header value required, if any. */
  authorization: string | undefined;
  ignoreEncodingFormat: boolean;
  zeroBase64Embeddings: boolean;
  script: SimulatorOptions['script'];
  logCapacity: number;
  logBodies: boolean;
  maxBodyBytes: number;
  clock: () => number;
  /** Whether a request needs its own seeded PRNG (faults or jitter are on). */
  needsRandom: boolean;
}

const TOP_LEVEL = [
  'port',
  'host',
  'seed',
  'models',
  'acceptAnyModel',
  'latency',
  'engine',
  'limits',
  'faults',
  'faultFor',
  'apiKey',
  'ignoreEncodingFormat',
  'zeroBase64Embeddings',
  'script',
  'logCapacity',
  'logBodies',
  'maxBodyBytes',
  'clock',
];

const defaultClock = (): number => performance.timeOrigin + performance.now();

/** Validates options and fills defaults; throws {@link SimulatorOptionError} naming the first bad option. */
export function resolveOptions(options: SimulatorOptions): ResolvedOptions {
  const root = object('options', options) ?? {};
  knownKeys('', root, TOP_LEVEL);
  knownKeys('latency.', object('latency', options.latency) ?? {}, [
    'headersMs',
    'tokensPerSecond',
    'interTokenJitter',
  ]);
  knownKeys('limits.', object('limits', options.limits) ?? {}, ['rpm', 'tpm', 'tokenAccounting']);
  const engine = resolveEngine(options.engine);
  knownKeys('faults.', object('faults', options.faults) ?? {}, [
    'rate',
    'kinds',
    'outageMs',
    'outageKind',
    'retryAfterMs',
    'slowMs',
    'keepaliveMs',
  ]);
  const latency: LatencyOptions = options.latency ?? {};
  const limits: LimitOptions = options.limits ?? {};
  const faults: FaultOptions = options.faults ?? {};

  const models = options.models ?? ['volley-sim-1', 'volley-sim-embed-1'];
  if (!Array.isArray(models) || !models.every((m) => typeof m === 'string' && m !== '')) {
    throw new SimulatorOptionError('models', 'an array of non-empty strings', models);
  }
  const apiKey = options.apiKey;
  if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey === '')) {
    // Never echo a key, even a malformed one.
    throw new SimulatorOptionError('apiKey', 'a non-empty string', typeof apiKey);
  }

  const faultRate = fraction('faults.rate', faults.rate, 0);
  const weights = object('faults.kinds', faults.kinds) ?? {};
  for (const [kind, weight] of Object.entries(weights)) {
    if (!isFaultKind(kind))
      throw new SimulatorOptionError(
        'faults.kinds',
        `keys from FAULT_KINDS (${FAULT_KINDS.join(', ')})`,
        kind,
      );
    number(`faults.kinds.${kind}`, weight, 0);
  }
  const faultPicker = new FaultPicker(faultRate, weights);
  if (faultRate > 0 && !faultPicker.active) {
    throw new SimulatorOptionError(
      'faults.kinds',
      'at least one positive weight when faults.rate > 0',
      faults.kinds,
    );
  }
  const outageKind = faults.outageKind ?? 'status-503';
  if (!isFaultKind(outageKind))
    throw new SimulatorOptionError('faults.outageKind', 'a fault kind', outageKind);

  const headers = latency.headersMs ?? 0;
  const headersSampler =
    typeof headers === 'number' ? undefined : sampler('latency.headersMs', headers);
  const interTokenJitter = fraction('latency.interTokenJitter', latency.interTokenJitter, 0);

  return {
    port: integer('port', options.port, 0, 0, 65_535),
    host: string('host', options.host, '127.0.0.1'),
    seed: integer('seed', options.seed, 1, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    models: [...models],
    modelSet: new Set(models),
    acceptAnyModel: boolean('acceptAnyModel', options.acceptAnyModel, true),
    headersMs: typeof headers === 'number' ? number('latency.headersMs', headers, 0) : 0,
    headersSampler,
    tokensPerSecond: number('latency.tokensPerSecond', latency.tokensPerSecond, 0),
    interTokenJitter,
    engine,
    rpm: positiveOrUndefined('limits.rpm', limits.rpm),
    tpm: positiveOrUndefined('limits.tpm', limits.tpm),
    tokenAccounting: oneOf(
      'limits.tokenAccounting',
      limits.tokenAccounting,
      ['admission', 'usage'],
      'admission',
    ),
    faultPicker,
    outageMs: number('faults.outageMs', faults.outageMs, 0),
    outageKind,
    retryAfterMs: number('faults.retryAfterMs', faults.retryAfterMs, 1000),
    slowMs: number('faults.slowMs', faults.slowMs, 5000),
    keepaliveMs: number('faults.keepaliveMs', faults.keepaliveMs, 0),
    faultFor: fn('faultFor', options.faultFor),
    authorization: apiKey === undefined ? undefined : `Bearer ${apiKey}`,
    ignoreEncodingFormat: boolean('ignoreEncodingFormat', options.ignoreEncodingFormat, false),
    zeroBase64Embeddings: boolean('zeroBase64Embeddings', options.zeroBase64Embeddings, false),
    script: fn('script', options.script),
    logCapacity: integer('logCapacity', options.logCapacity, 100_000, 1, 2 ** 31),
    logBodies: boolean('logBodies', options.logBodies, true),
    maxBodyBytes: integer('maxBodyBytes', options.maxBodyBytes, 32 * 1024 * 1024, 1, 2 ** 31),
    clock: fn('clock', options.clock) ?? defaultClock,
    needsRandom: faultPicker.active || headersSampler !== undefined || interTokenJitter > 0,
  };
}

const MAX_SLOTS = 1_000_000;

function resolveEngine(options: EngineOptions | undefined): ResolvedEngineOptions | undefined {
  const value = object('engine', options);
  if (value === undefined || options === undefined) return undefined;
  knownKeys('engine.', value, [
    'slots',
    'prefillMsPerToken',
    'decodeStepMs',
    'decodeStepMsPerSequence',
    'maxWaiting',
    'jitter',
    'maxBatchedTokens',
  ]);
  if (options.slots === undefined) {
    throw new SimulatorOptionError('engine.slots', `an integer from 1 to ${MAX_SLOTS}`, undefined);
  }
  const slots = integer('engine.slots', options.slots, 1, 1, MAX_SLOTS);
  const maxWaiting = options.maxWaiting;
  return {
    slots,
    prefillMsPerToken: number('engine.prefillMsPerToken', options.prefillMsPerToken, 0.05),
    decodeStepMs: number('engine.decodeStepMs', options.decodeStepMs, 10),
    decodeStepMsPerSequence: number(
      'engine.decodeStepMsPerSequence',
      options.decodeStepMsPerSequence,
      0.1,
    ),
    maxWaiting:
      maxWaiting === undefined
        ? Number.POSITIVE_INFINITY
        : integer('engine.maxWaiting', maxWaiting, 0, 0, 2 ** 31),
    jitter: fraction('engine.jitter', options.jitter, 0),
    // vLLM refuses max_num_batched_tokens < max_num_seqs: a step must fit one token per sequence.
    maxBatchedTokens: integer(
      'engine.maxBatchedTokens',
      options.maxBatchedTokens,
      Math.max(2048, slots),
      slots,
      2 ** 31,
    ),
  };
}

function sampler(option: string, spec: Exclude<LatencyMs, number>): (random: Random) => number {
  const value = object(option, spec) ?? {};
  switch (spec.distribution) {
    case 'uniform': {
      knownKeys(`${option}.`, value, ['distribution', 'minMs', 'maxMs']);
      const min = number(`${option}.minMs`, spec.minMs, undefined);
      const max = number(`${option}.maxMs`, spec.maxMs, undefined);
      if (max < min)
        throw new SimulatorOptionError(`${option}.maxMs`, `a number >= minMs (${min})`, max);
      return (random) => min + (max - min) * random();
    }
    case 'normal': {
      knownKeys(`${option}.`, value, ['distribution', 'meanMs', 'stdDevMs']);
      const mean = number(`${option}.meanMs`, spec.meanMs, undefined);
      const stdDev = number(`${option}.stdDevMs`, spec.stdDevMs, undefined);
      return (random) => Math.max(0, mean + stdDev * normalSample(random));
    }
    case 'lognormal': {
      knownKeys(`${option}.`, value, ['distribution', 'medianMs', 'sigma']);
      const median = number(`${option}.medianMs`, spec.medianMs, undefined);
      const sigma = number(`${option}.sigma`, spec.sigma, undefined);
      return (random) => median * Math.exp(sigma * normalSample(random));
    }
    default:
      throw new SimulatorOptionError(
        `${option}.distribution`,
        "'uniform', 'normal' or 'lognormal'",
        (spec as { distribution: unknown }).distribution,
      );
  }
}

function object(option: string, value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SimulatorOptionError(option, 'an object', value);
  }
  return value as Record<string, unknown>;
}

function knownKeys(
  prefix: string,
  value: Record<string, unknown>,
  allowed: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      throw new SimulatorOptionError(`${prefix}${key}`, `one of ${allowed.join(', ')}`, key);
  }
}

function number(option: string, value: unknown, fallback: number | undefined): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new SimulatorOptionError(option, 'a finite number >= 0', value);
  }
  return value;
}

function positiveOrUndefined(option: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SimulatorOptionError(option, 'a finite number > 0', value);
  }
  return value;
}

function fraction(option: string, value: unknown, fallback: number): number {
  const result = number(option, value, fallback);
  if (result > 1) throw new SimulatorOptionError(option, 'a number between 0 and 1', value);
  return result;
}

function integer(
  option: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SimulatorOptionError(option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function string(option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '')
    throw new SimulatorOptionError(option, 'a non-empty string', value);
  return value;
}

function oneOf<T extends string>(
  option: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new SimulatorOptionError(option, `one of ${allowed.join(', ')}`, value);
  }
  return value as T;
}

function boolean(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new SimulatorOptionError(option, 'a boolean', value);
  return value;
}

function fn<T>(option: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function')
    throw new SimulatorOptionError(option, 'a function', value);
  return value;
}
