/**
 * The facade: one object over the supervisor, the token bucket and the worker actors.
 *
 *   createVolley(options) --> supervisor actor --asks--> token-bucket actor
 *                                   |
 *                                   v
 *                  Piscina worker threads (threads) | the same actor on this loop (async)
 */

import type { ClusterLink } from '@volley/cluster';
import type {
  CallResult,
  CallSpec,
  ChatCompletion,
  ChatCompletionRequest,
  Completion,
  CompletionRequest,
  CountTokens,
  Dispatcher,
  DispatchSink,
  EmbeddingMatrix,
  EndpointLimits,
  LaneStats,
  Logger,
  RuntimeStats,
  ServerHintsPoller,
  VolleyEvents,
  WorkerStats,
} from '@volley/core';
import {
  createEndpointLimits,
  createLogger,
  createSupervisor,
  createTokenBucket,
  ENDPOINT_PATHS,
  ErrorCode,
  loadTokenCounter,
  pollServerHints,
  systemClock,
  VolleyError,
} from '@volley/core';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import {
  createInlineDispatcher,
  createRoutingDispatcher,
  createThreadDispatcher,
} from '@volley/workers';
import { EventEmitter } from 'eventemitter3';
import type { Registry } from 'prom-client';
import { routeByWorkload } from './auto-mode.js';
import { emitClusterEvent, joinCluster } from './cluster.js';
import type { DeltaStream } from './delta-stream.js';
import { createDeltaStream } from './delta-stream.js';
import type { EmbedBatchResult, EmbeddedItem, EmbedManyResult, EmbedPacking } from './embed.js';
import {
  DEFAULT_EMBED_BATCH_SIZE,
  DEFAULT_EMBED_MAX_TOKENS_PER_REQUEST,
  embedMany,
  embedStream,
} from './embed.js';
import { volleyFetch } from './fetch.js';
import type { LogNames } from './log-events.js';
import { logEvents, logLimitLearned, logNames } from './log-events.js';
import type { EndpointOptions, ResolvedOptions, VolleyMode, VolleyOptions } from './options.js';
import { resolveOptions } from './options.js';
import type { Settled } from './settled.js';
import { settle } from './settled.js';

/** Options every single call accepts. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Total budget of this call across its attempts. */
  timeoutMs?: number;
}

export interface ChatOptions extends CallOptions {
  /** Stream the response (SSE) and report each content delta as it arrives. */
  onDelta?: (delta: { choice: number; content: string }) => void;
  /** Stream on the wire without a callback (to measure time to first token, or to keep idle timeouts short). */
  stream?: boolean;
}

/**
 * `T` without `K`. Unlike `Omit`, it keeps the known keys of a type that also has an index
 * signature (OpenAI bodies do): `Omit` would reduce them to the index signature and accept
 * `{ messages: 42 }`.
 */
type Without<T, K extends PropertyKey> = { [P in keyof T as P extends K ? never : P]: T[P] };

/** A chat request whose `model` may be left to the runtime's default. */
export type ChatInput = Without<ChatCompletionRequest, 'model' | 'stream'> & { model?: string };
export type CompletionInput = Without<CompletionRequest, 'model' | 'stream'> & { model?: string };

export interface EmbedOptions extends CallOptions, EmbedPacking {
  model?: string;
  dimensions?: number;
}

/**
 * Vectors for every input, in input order. `matrix.data` is row-major `count × dimensions`
 * (row i = input i, a layout NumPy reads as `np.frombuffer(data, np.float32).reshape(count, dimensions)`);
 * `vectors[i]` is a view of row i. Inputs whose request failed have zero rows and are listed in
 * `errors`.
 */
export type EmbedResult = EmbedManyResult;

/** A low-level call: any OpenAI-compatible path and body. */
export interface RequestOptions extends CallOptions {
  /** Path relative to the base URL (`/chat/completions`), or a batch `url` (`/v1/chat/completions`). */
  path: string;
  body: Record<string, unknown>;
  /** Return the body as JSON text, unparsed (how batch output files embed it). */
  raw?: boolean;
  stream?: boolean;
  onDelta?: ChatOptions['onDelta'];
}

/** What `request` takes inside the package: deltas keep the attempt they came from. */
export type InternalRequestOptions = Without<RequestOptions, 'onDelta'> & {
  onDelta?: CallSpec['onDelta'];
};

export interface MapOptions {
  /** Items in progress at once; defaults to the runtime's concurrency. */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface Volley {
  readonly mode: VolleyMode;
  /** Base URLs in use, in endpoint order. */
  readonly endpoints: readonly string[];
  /** The embedded simulator, when no endpoint was configured. */
  readonly simulator: Simulator | undefined;
  chat(request: ChatInput, options?: ChatOptions): Promise<ChatCompletion>;
  /**
   * Streams a chat completion as an async iterable of deltas; `completion` is the assembled
   * answer. Breaking out of the loop aborts the call; the call's error is thrown from the loop.
   *
   * @example
   * const stream = volley.stream({ messages: [{ role: 'user', content: 'Tell me a story' }] });
   * for await (const delta of stream) process.stdout.write(delta.content);
   * const completion = await stream.completion;
   */
  stream(request: ChatInput, options?: CallOptions): DeltaStream<ChatCompletion>;
  /**
   * A `fetch` for OpenAI-compatible SDKs (`new OpenAI({ fetch: volley.fetch })`, the AI SDK's
   * `createOpenAI({ fetch: volley.fetch })`): their calls go through this runtime's limits,
   * retries and threads, streaming included. Bound: pass it around as it is. See `fetch.ts` for
   * how paths, errors and streams are mapped.
   */
  readonly fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  complete(request: CompletionInput, options?: ChatOptions): Promise<Completion>;
  /**
   * Embeds many texts: packed into requests (`batchSize`, `maxTokensPerRequest`), sent with
   * bounded concurrency, decoded in the workers, returned in input order.
   */
  embed(input: string | readonly string[], options?: EmbedOptions): Promise<EmbedResult>;
  /** The same over an (async) iterable of any length, yielding in input order with bounded memory. */
  embedStream(
    inputs: AsyncIterable<string> | Iterable<string>,
    options?: EmbedOptions,
  ): AsyncGenerator<EmbeddedItem>;
  request(options: RequestOptions): Promise<CallResult>;
  /**
   * Runs `fn` over every item with bounded concurrency. Results come back in input order, each
   * settled on its own: one failure never rejects the whole.
   */
  map<T, R>(
    items: Iterable<T> | AsyncIterable<T>,
    fn: (item: T, index: number) => Promise<R>,
    options?: MapOptions,
  ): Promise<Array<Settled<R>>>;
  stats(): RuntimeStats;
  /**
   * Prometheus metrics of this runtime when created with `metrics` (a prom-client `Registry`;
   * `await volley.metrics.metrics()` is the exposition text), otherwise `undefined`.
   */
  readonly metrics: Registry | undefined;
  /** Per endpoint: rate-limit capacity, waiters, in-flight reservations, time spent waiting. */
  limiterStats(): Promise<LaneStats[]>;
  workerStats(): Promise<WorkerStats[]>;
  /** True while the call queue is full: wait for `drain` before adding more. */
  readonly isSaturated: boolean;
  on<E extends keyof VolleyEvents>(event: E, listener: (...args: VolleyEvents[E]) => void): this;
  once<E extends keyof VolleyEvents>(event: E, listener: (...args: VolleyEvents[E]) => void): this;
  off<E extends keyof VolleyEvents>(event: E, listener: (...args: VolleyEvents[E]) => void): this;
  /** Stops intake, lets every accepted call finish, releases threads and sockets. Idempotent. */
  close(): Promise<void>;
  /** Aborts everything now; pending calls reject with `VOLLEY_ERR_ABORTED`. */
  destroy(error?: Error): Promise<void>;
}

/** Default model of the embedded simulator. */
const SIMULATOR_CHAT_MODEL = 'volley-sim-1';
/** Embedding model of the embedded simulator, used when no endpoint and no model are given. */
export const SIMULATOR_EMBEDDING_MODEL = 'volley-sim-embed-1';

/**
 * Creates a Volley runtime. With no endpoint and no `OPENAI_BASE_URL`, it starts the embedded
 * OpenAI-compatible simulator on a loopback port, so everything works out of the box.
 *
 * @example
 * const volley = await createVolley({ endpoints: [{ baseUrl: 'http://localhost:11434/v1' }], model: 'llama3.2' });
 * const reply = await volley.chat({ messages: [{ role: 'user', content: 'Hello' }] });
 * await volley.close();
 */
export async function createVolley(options: VolleyOptions = {}): Promise<Volley> {
  let simulator: Simulator | undefined;
  let endpoints: EndpointOptions[] | undefined = options.endpoints;
  if (endpoints === undefined && process.env.OPENAI_BASE_URL)
    endpoints = [{ baseUrl: process.env.OPENAI_BASE_URL }];
  const silentSimulator = endpoints === undefined && options.simulator === undefined;
  if (endpoints === undefined) {
    simulator = await createSimulator(options.simulator);
    endpoints = [{ baseUrl: simulator.url }];
  }
  let resolved: ResolvedOptions;
  try {
    resolved = resolveOptions(options, endpoints);
  } catch (error) {
    await simulator?.close();
    throw error;
  }
  if (simulator !== undefined) resolved.model ??= SIMULATOR_CHAT_MODEL;
  const tokenCounter: CountTokens | undefined = resolved.limits.some(
    (lane) => lane.tpm !== undefined,
  )
    ? await loadTokenCounter()
    : undefined;
  const log = options.logger === false ? undefined : (options.logger ?? createLogger());
  if (silentSimulator && log !== undefined) warnSimulatorOnce(log);
  // Shared limits (`cluster`): joined before the runtime exists, so its bucket runs on them.
  let runtime: VolleyRuntime | undefined;
  let cluster: ClusterLink | undefined;
  try {
    cluster = await joinCluster(resolved, (event) => {
      if (runtime !== undefined) emitClusterEvent(runtime, log, resolved, event);
    });
  } catch (error) {
    await simulator?.close();
    throw error;
  }
  runtime = new VolleyRuntime(resolved, tokenCounter, simulator, log, cluster);
  if (options.metrics !== undefined && options.metrics !== false) {
    // Loaded only when asked for: a runtime without metrics pays neither the import nor a listener.
    const { createMetrics } = await import('./metrics.js');
    const created = runtime;
    try {
      created.metrics = createMetrics(
        {
          events: created,
          stats: () => created.stats(),
          limiterStats: () => created.limiterStats(),
          endpoints: created.endpoints,
          lanes: laneOwners(resolved),
        },
        options.metrics === true ? undefined : options.metrics.registry,
      );
    } catch (error) {
      // e.g. a registry that already holds another runtime's metrics: no runtime is left running.
      await created.destroy();
      throw new VolleyError(
        ErrorCode.INVALID_OPTIONS,
        `options.metrics: ${(error as Error).message} (one runtime per registry)`,
        { cause: error },
      );
    }
  }
  return runtime;
}

let warnedSimulator = false;

/**
 * Said once per process: without an endpoint every answer is made up by the simulator, which is
 * right for a first try and a test but silently wrong for real work.
 */
function warnSimulatorOnce(log: Logger): void {
  if (warnedSimulator) return;
  warnedSimulator = true;
  log.warn(
    'no endpoint configured: using the embedded simulator, whose answers are made up. ' +
      'To call a real model pass createVolley({ endpoints: [{ baseUrl, apiKeyEnv }] }) or set ' +
      'OPENAI_BASE_URL (and OPENAI_API_KEY); pass { simulator: {} } to use the simulator on purpose.',
  );
}

class VolleyRuntime extends EventEmitter<VolleyEvents> implements Volley {
  readonly mode: VolleyMode;
  readonly endpoints: readonly string[];
  readonly simulator: Simulator | undefined;
  metrics: Registry | undefined;
  readonly #options: ResolvedOptions;
  readonly #supervisor: ReturnType<typeof createSupervisor>;
  readonly #bucket: ReturnType<typeof createTokenBucket>;
  readonly #progressTimer: ReturnType<typeof setInterval>;
  /** Per-endpoint adaptive limits and the poller of server hints (`concurrency: 'auto'`). */
  readonly #limits: EndpointLimits | undefined;
  readonly #hints: ServerHintsPoller | undefined;
  #dispatcher: Dispatcher | undefined;
  /** Set once a server answered base64 embeddings with zero vectors. */
  #embeddingsAsFloat = false;
  #log: Logger | undefined;
  readonly #logNames: LogNames;
  #closed: Promise<void> | undefined;

  constructor(
    options: ResolvedOptions,
    tokenCounter: CountTokens | undefined,
    simulator: Simulator | undefined,
    log: Logger | undefined,
    cluster: ClusterLink | undefined,
  ) {
    super();
    this.#log = log;
    this.mode = options.mode;
    this.endpoints = options.endpoints.map((endpoint) => endpoint.baseUrl);
    this.simulator = simulator;
    this.#options = options;
    this.#logNames = logNames(this.endpoints, options.laneIdentities, options.model);
    this.#bucket = createTokenBucket({
      lanes: options.limits,
      ...(log === undefined
        ? {}
        : {
            onLimitLearned: (lane, limits) =>
              logLimitLearned(log, this.#logNames.lane(lane), limits),
          }),
      ...(cluster === undefined ? {} : { store: (setup) => cluster.store(setup) }),
    });
    if (options.adaptive.some((policy) => policy !== undefined)) {
      this.#limits = createEndpointLimits({
        policies: options.adaptive,
        clock: systemClock,
        onDecision: (endpoint, decision) => {
          if (this.listenerCount('concurrencyLimit') > 0)
            this.emit('concurrencyLimit', { endpoint, ...decision });
        },
      });
      const limits = this.#limits;
      if (options.serverHints)
        this.#hints = pollServerHints({
          baseUrls: this.endpoints.map((url, i) => (limits.isAdaptive(i) ? url : undefined)),
          clock: systemClock,
          onHint: (endpoint, hint) => limits.observe(endpoint, hint),
        });
    }
    this.#supervisor = createSupervisor({
      createDispatcher: (sink: DispatchSink) => {
        this.#dispatcher = createDispatcherFor(options, sink);
        return this.#dispatcher;
      },
      bucket: this.#bucket,
      endpoints: options.policies,
      circuitBreaker: options.circuitBreaker,
      tokenCounter,
      concurrency: options.concurrency,
      ...(this.#limits === undefined ? {} : { limits: this.#limits }),
      maxQueue: options.maxQueue,
      maxRetries: options.maxRetries,
      maxAmbiguousRetries: options.maxAmbiguousRetries,
      backoff: options.backoff,
      retryAfterCapMs: options.retryAfterCapMs,
      timeoutMs: options.timeoutMs,
      attemptTimeoutMs: options.attemptTimeoutMs,
      restartBudget: options.restartBudget,
      events: this,
      mode: options.mode,
      ...(options.hedge === undefined ? {} : { hedge: options.hedge }),
    });
    this.#progressTimer = setInterval(() => {
      if (this.listenerCount('progress') > 0) this.emit('progress', this.stats());
    }, options.progressIntervalMs);
    this.#progressTimer.unref();
    if (log !== undefined) logEvents(this, log, this.#logNames);
  }

  get isSaturated(): boolean {
    return this.#supervisor.isSaturated;
  }

  async chat(request: ChatInput, options: ChatOptions = {}): Promise<ChatCompletion> {
    const stream = options.stream === true || options.onDelta !== undefined;
    const result = await this.#supervisor.call(
      this.#spec(ENDPOINT_PATHS.chat, this.#withModel(request), options, stream, options.onDelta),
    );
    return result.body as ChatCompletion;
  }

  async complete(request: CompletionInput, options: ChatOptions = {}): Promise<Completion> {
    const stream = options.stream === true || options.onDelta !== undefined;
    const result = await this.#supervisor.call(
      this.#spec(
        ENDPOINT_PATHS.completion,
        this.#withModel(request),
        options,
        stream,
        options.onDelta,
      ),
    );
    return result.body as Completion;
  }

  async embed(input: string | readonly string[], options: EmbedOptions = {}): Promise<EmbedResult> {
    const model = this.#embeddingModel(options);
    const inputs = typeof input === 'string' ? [input] : input;
    return embedMany(
      inputs,
      packingOf(options, this.endpoints),
      (batch) => this.#embedBatch(model, batch, options),
      model,
    );
  }

  embedStream(
    inputs: AsyncIterable<string> | Iterable<string>,
    options: EmbedOptions = {},
  ): AsyncGenerator<EmbeddedItem> {
    const model = this.#embeddingModel(options);
    // Two batches per slot: one on the wire, one waiting, so no slot idles between batches.
    const window = Math.max(2, this.#options.concurrency * 2);
    return embedStream(inputs, packingOf(options, this.endpoints), window, (batch) =>
      this.#embedBatch(model, batch, options),
    );
  }

  #embeddingModel(options: EmbedOptions): string {
    const model =
      options.model ?? (this.simulator ? SIMULATOR_EMBEDDING_MODEL : this.#options.model);
    if (model === undefined) {
      throw new VolleyError(
        ErrorCode.INVALID_OPTIONS,
        'embed: no model given and no default model',
      );
    }
    return model;
  }

  /** One embeddings request, decoded to a matrix in the worker. */
  async #embedBatch(
    model: string,
    inputs: string[],
    options: EmbedOptions,
  ): Promise<EmbedBatchResult> {
    const body: Record<string, unknown> = { model, input: inputs };
    if (options.dimensions !== undefined) body.dimensions = options.dimensions;
    const askedBase64 = !this.#embeddingsAsFloat;
    if (!askedBase64) body.encoding_format = 'float';
    const spec = this.#spec(ENDPOINT_PATHS.embedding, body, options, false, undefined);
    spec.embeddings = 'vectors';
    const result = await this.#supervisor.call(spec);
    const matrix = result.embeddings as EmbeddingMatrix;
    if (askedBase64 && matrix.serverSentFloats && !this.#embeddingsAsFloat) {
      // The server ignores encoding_format: ask for floats from now on, which is also what
      // tells `auto` mode to decode them on a worker thread.
      this.#embeddingsAsFloat = true;
    }
    if (askedBase64 && !matrix.serverSentFloats && isZeroRow(matrix)) {
      // Some local servers answer base64 requests with zero vectors: switch to float JSON for
      // good, say so once, and ask again (batches already in flight come back here too).
      if (!this.#embeddingsAsFloat) {
        this.#embeddingsAsFloat = true;
        this.#log?.warn(
          this.#logNames.endpoint(result.endpoint),
          'server returned zero vectors for base64 embeddings; using float JSON',
        );
      }
      return this.#embedBatch(model, inputs, options);
    }
    const responseModel = (result.body as { model?: unknown } | undefined)?.model;
    return {
      matrix,
      model: typeof responseModel === 'string' ? responseModel : model,
      usage: result.usage,
    };
  }

  stream(request: ChatInput, options: CallOptions = {}): DeltaStream<ChatCompletion> {
    return createDeltaStream(async (onDelta, signal) => {
      const body = this.#withModel(request);
      const spec = this.#spec(ENDPOINT_PATHS.chat, body, { ...options, signal }, true, onDelta);
      return (await this.#supervisor.call(spec)).body as ChatCompletion;
    }, options.signal);
  }

  readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    volleyFetch((options) => this.#request(options), input, init);

  request(options: RequestOptions): Promise<CallResult> {
    return this.#request(options);
  }

  /** `request`, with deltas as the runtime delivers them (with their attempt), for `stream` and `fetch`. */
  #request(options: InternalRequestOptions): Promise<CallResult> {
    // A batch line's url (`/v1/chat/completions`) joins a base URL that already ends in `/v1`.
    const path = options.path.startsWith('/v1/') ? options.path.slice(3) : options.path;
    const stream = options.stream === true || options.onDelta !== undefined;
    const spec = this.#spec(path, this.#withModel(options.body), options, stream, options.onDelta);
    if (options.raw === true) spec.raw = true;
    return this.#supervisor.call(spec);
  }

  async map<T, R>(
    items: Iterable<T> | AsyncIterable<T>,
    fn: (item: T, index: number) => Promise<R>,
    options: MapOptions = {},
  ): Promise<Array<Settled<R>>> {
    const limit = options.concurrency ?? this.#options.concurrency;
    const results: Array<Settled<R>> = [];
    const running = new Set<Promise<void>>();
    let index = 0;
    for await (const item of items) {
      if (options.signal?.aborted) break;
      const i = index++;
      const task = settle(i, () => fn(item, i)).then((settled) => {
        results[i] = settled;
      });
      const tracked = task.finally(() => running.delete(tracked));
      running.add(tracked);
      if (running.size >= limit) await Promise.race(running);
    }
    await Promise.all(running);
    if (options.signal?.aborted) {
      const aborted = new VolleyError(ErrorCode.ABORTED, 'map aborted before this item started');
      for (let i = 0; i < index; i++)
        results[i] ??= { ok: false, index: i, error: aborted, latencyMs: 0 };
    }
    return results;
  }

  stats(): RuntimeStats {
    const stats = this.#supervisor.stats();
    const limits = this.#limits;
    if (limits === undefined) return stats;
    stats.byEndpoint.forEach((endpoint, i) => {
      if (!limits.isAdaptive(i)) return;
      endpoint.concurrencyLimit = limits.limit(i);
      const hint = limits.hint(i);
      if (hint !== undefined) endpoint.server = { ...hint };
    });
    return stats;
  }

  limiterStats(): Promise<LaneStats[]> {
    return this.#bucket.stats();
  }

  workerStats(): Promise<WorkerStats[]> {
    return this.#dispatcher?.stats() ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#progressTimer);
      this.#hints?.close();
      await this.#supervisor.close();
      await this.simulator?.close();
    })();
    return this.#closed;
  }

  async destroy(error?: Error): Promise<void> {
    clearInterval(this.#progressTimer);
    this.#hints?.close();
    await this.#supervisor.destroy(error);
    await this.simulator?.close();
    this.#closed ??= Promise.resolve();
  }

  #withModel<T extends { model?: string }>(body: T): T & { model: string } {
    if (typeof body.model === 'string') return body as T & { model: string };
    if (this.#options.model === undefined) {
      throw new VolleyError(
        ErrorCode.INVALID_OPTIONS,
        'request has no "model" and no default model is configured',
      );
    }
    return { ...body, model: this.#options.model };
  }

  #spec(
    path: string,
    body: object,
    options: CallOptions,
    stream: boolean,
    onDelta: CallSpec['onDelta'],
  ): CallSpec {
    const spec: CallSpec = { path, body: body as Record<string, unknown>, stream };
    if (onDelta !== undefined) spec.onDelta = onDelta;
    if (options.signal !== undefined) spec.signal = options.signal;
    if (options.timeoutMs !== undefined) spec.timeoutMs = options.timeoutMs;
    return spec;
  }
}

function createDispatcherFor(options: ResolvedOptions, sink: DispatchSink): Dispatcher {
  const config = { endpoints: options.endpoints, largeAnswerSlots: options.largeAnswerSlots };
  switch (options.mode) {
    case 'async':
      return createInlineDispatcher({ sink, config });
    case 'threads':
      return createThreadDispatcher({ sink, config, threads: options.threads });
    case 'auto':
      return createRoutingDispatcher({
        async: createInlineDispatcher({ sink, config }),
        threads: createThreadDispatcher({ sink, config, threads: options.threads }),
        route: routeByWorkload,
      });
  }
}

/** Whose limits each token-bucket lane holds: the endpoint's own (lane i), then per model. */
function laneOwners(
  options: ResolvedOptions,
): Array<{ endpoint: number; model: string | undefined }> {
  const owners: Array<{ endpoint: number; model: string | undefined }> = [];
  options.policies.forEach((policy, endpoint) => {
    owners[policy.lane] = { endpoint, model: undefined };
    for (const [model, lane] of policy.modelLanes ?? []) owners[lane] = { endpoint, model };
  });
  return owners;
}

/** Inputs per embeddings request that OpenAI (and Azure OpenAI) accept. */
const OPENAI_EMBED_BATCH_SIZE = 2048;

/**
 * The default inputs per request for these endpoints: OpenAI's own limit when every endpoint is
 * OpenAI's, otherwise {@link DEFAULT_EMBED_BATCH_SIZE}, which local servers (vLLM, Ollama,
 * llama.cpp) take; servers with a smaller cap (TEI's default is 32) need `batchSize`.
 */
export function defaultBatchSize(endpoints: readonly string[]): number {
  const isOpenAI = (url: string): boolean => {
    const host = URL.canParse(url) ? new URL(url).hostname : '';
    return host === 'api.openai.com' || host.endsWith('.openai.azure.com');
  };
  return endpoints.length > 0 && endpoints.every(isOpenAI)
    ? OPENAI_EMBED_BATCH_SIZE
    : DEFAULT_EMBED_BATCH_SIZE;
}

function packingOf(options: EmbedPacking, endpoints: readonly string[]): Required<EmbedPacking> {
  return {
    batchSize: options.batchSize ?? defaultBatchSize(endpoints),
    maxTokensPerRequest: options.maxTokensPerRequest ?? DEFAULT_EMBED_MAX_TOKENS_PER_REQUEST,
  };
}

function isZeroRow(matrix: EmbeddingMatrix): boolean {
  for (let i = 0; i < matrix.dimensions; i++) if (matrix.data[i] !== 0) return false;
  return matrix.dimensions > 0;
}
