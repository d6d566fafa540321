/**
 * The HTTP server: intake, routing, fault choice, rate limits and generation over node:http.
 * How a response is written (pacing, fault behaviour on the wire) lives in exchange.ts.
 *
 * Request path, in order (each step may answer and stop):
 *
 *   read body ─► auth (401) ─► route (404) ─► parse + check body (400) ─► model (404)
 *     ─► fault: header, then faultFor, then outage, then seeded draw ─► rate limits (429)
 *     ─► generate ─► deliver (headers delay, token pacing, delivery faults)
 *                    or, with `engine`: engine queue (503 when full) ─► engine-paced delivery
 *
 * With zero latency and no faults the whole answer is written synchronously from the request's
 * `end` event: no timer, no promise, one socket write.
 */

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  chatTokens,
  completionTokens,
  ignoresEos,
  responseAsChat,
  type TokenizedText,
  tokenizeText,
} from './content.js';
import { EmbeddingCache, type EmbeddingEncoding } from './embeddings.js';
import { Engine, type EngineState } from './engine.js';
import { Exchange, type ExchangeContext, isDeliveryFault } from './exchange.js';
import { type Fault, isFaultKind } from './faults.js';
import { metricsText, propsJson, slotsJson } from './hints.js';
import {
  type ResolvedOptions,
  resolveOptions,
  SimulatorOptionError,
  type SimulatorOptions,
} from './options.js';
import { createRandom, mix } from './random.js';
import { formatGoDuration, RateLimiter } from './rate-limit.js';
import {
  type MutableLogEntry,
  RequestLog,
  type SimRequestLogEntry,
  type SimStats,
} from './request-log.js';
import {
  type GenerationPlan,
  InvalidRequest,
  parseBody,
  planChat,
  planCompletion,
  planEmbeddings,
  planResponse,
} from './requests.js';
import {
  type Answer,
  type AnswerKind,
  chatJson,
  completionJson,
  embeddingsJson,
  modelJson,
  modelsJson,
  responseJson,
  responseStreamFrames,
  streamFrames,
} from './responses.js';

/** A running simulator. */
export interface Simulator {
  /** Base URL in the OpenAI SDK's `baseURL` convention: `http://127.0.0.1:<port>/v1`. */
  readonly url: string;
  readonly port: number;
  /** The request log, oldest first (a snapshot; bounded by `logCapacity`). */
  readonly requests: readonly SimRequestLogEntry[];
  /** Counters since start (a snapshot). */
  stats(): SimStats;
  /** The engine's state, as `GET /sim/engine` answers it; undefined while the engine is off. */
  engineState(): EngineState | undefined;
  /**
   * Changes options live (latency, faults, limits, ...), validated like at creation; a rejected
   * patch changes nothing. `port`, `host` and `logCapacity` cannot change. Setting `limits`
   * starts fresh buckets; setting `faults` with `outageMs` starts an outage now.
   */
  setOptions(patch: Partial<SimulatorOptions>): void;
  /** Stops listening and destroys every connection, including stalled streams. Idempotent. */
  close(): Promise<void>;
}

type Route =
  | 'chat'
  | 'completions'
  | 'responses'
  | 'embeddings'
  | 'models'
  | 'model'
  | 'metrics'
  | 'slots'
  | 'props'
  | 'engine';

/** Engine state in the formats servers publish it (hints.ts); 404 while the engine is off. */
const HINT_ROUTES: Readonly<Record<string, Route>> = {
  '/metrics': 'metrics',
  '/slots': 'slots',
  '/props': 'props',
  '/sim/engine': 'engine',
};

const MODEL_PREFIX = '/v1/models/';

function routeOf(method: string, path: string): Route | undefined {
  if (method === 'POST') {
    if (path === '/v1/chat/completions') return 'chat';
    if (path === '/v1/completions') return 'completions';
    if (path === '/v1/responses') return 'responses';
    if (path === '/v1/embeddings') return 'embeddings';
  } else if (method === 'GET') {
    if (path === '/v1/models') return 'models';
    if (path.startsWith(MODEL_PREFIX) && path.length > MODEL_PREFIX.length) return 'model';
    if (Object.hasOwn(HINT_ROUTES, path)) return HINT_ROUTES[path];
  }
  return undefined;
}

/** The engine behind {@link Simulator}; callers only ever see the interface. */
class SimulatorServer implements Simulator {
  readonly #server: Server;
  readonly #context: ExchangeContext;
  readonly #log: RequestLog;
  readonly #cache = new EmbeddingCache(32 * 1024 * 1024);
  readonly #idPrefix = `req_${randomBytes(6).toString('hex')}`;
  #raw: SimulatorOptions;
  #options: ResolvedOptions;
  #limiter: RateLimiter | undefined;
  /**
   * Created with the first `engine` option and kept: turning the engine off (`setOptions`) stops
   * new requests from using it while the ones it holds finish.
   */
  #engine: Engine | undefined;
  #modelsBody: string;
  #outageUntil = 0;
  #seq = 0;
  #closing: Promise<void> | undefined;
  readonly #stats: SimStats = {
    requests: 0,
    inFlight: 0,
    byStatus: {},
    byFault: {},
    rateLimited: 0,
    aborted: 0,
    queueFull: 0,
    promptTokens: 0,
    completionTokens: 0,
    embeddings: 0,
  };

  constructor(raw: SimulatorOptions, options: ResolvedOptions) {
    this.#raw = { ...raw };
    this.#options = options;
    this.#log = new RequestLog(options.logCapacity);
    this.#limiter = this.#createLimiter();
    this.#engine =
      options.engine === undefined ? undefined : new Engine(options.engine, options.seed);
    this.#modelsBody = modelsJson(options.models);
    if (options.outageMs > 0) this.#outageUntil = options.clock() + options.outageMs;
    const server = this;
    // Getters, not copies: setOptions reaches requests already in flight.
    this.#context = {
      get options() {
        return server.#options;
      },
      get limiter() {
        return server.#limiter;
      },
      stats: this.#stats,
    };
    this.#server = createServer({ noDelay: true }, (req, res) => this.#onRequest(req, res));
  }

  /** Resolves once listening; rejects with the listen error (EADDRINUSE, ...). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    const host = this.#options.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}/v1`;
  }

  get requests(): readonly SimRequestLogEntry[] {
    return this.#log.snapshot();
  }

  stats(): SimStats {
    const stats = this.#stats;
    return { ...stats, byStatus: { ...stats.byStatus }, byFault: { ...stats.byFault } };
  }

  engineState(): EngineState | undefined {
    return this.#options.engine === undefined ? undefined : this.#engine?.state();
  }

  setOptions(patch: Partial<SimulatorOptions>): void {
    for (const fixed of ['port', 'host', 'logCapacity'] as const) {
      if (fixed in patch && patch[fixed] !== this.#raw[fixed]) {
        throw new SimulatorOptionError(fixed, 'the value the simulator started with', patch[fixed]);
      }
    }
    const raw = { ...this.#raw, ...patch };
    const options = resolveOptions(raw);
    this.#raw = raw;
    this.#options = options;
    this.#modelsBody = modelsJson(options.models);
    if ('limits' in patch || 'clock' in patch) this.#limiter = this.#createLimiter();
    if ('faults' in patch) {
      this.#outageUntil = options.outageMs > 0 ? options.clock() + options.outageMs : 0;
    }
    if (options.engine !== undefined) {
      if (this.#engine === undefined) this.#engine = new Engine(options.engine, options.seed);
      else this.#engine.configure(options.engine);
    }
  }

  close(): Promise<void> {
    this.#closing ??= new Promise((resolve) => {
      this.#engine?.close();
      this.#server.close(() => resolve());
      // close() alone waits for keep-alive sockets and stalled streams; end them now.
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  #createLimiter(): RateLimiter | undefined {
    const { rpm, tpm, clock } = this.#options;
    return rpm === undefined && tpm === undefined ? undefined : new RateLimiter(rpm, tpm, clock());
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const seq = this.#seq++;
    const entry: MutableLogEntry = {
      seq,
      method: req.method ?? 'GET',
      path: query === -1 ? url : url.slice(0, query),
      requestId: this.#idPrefix + seq.toString(36),
      receivedAt: this.#options.clock(),
      headersSentAt: undefined,
      finishedAt: undefined,
      status: 0,
      fault: undefined,
      stream: false,
      aborted: false,
      body: undefined,
    };
    this.#log.push(entry);
    this.#stats.requests++;
    this.#stats.inFlight++;
    const exchange = new Exchange(req, res, entry, this.#context);
    res.on('close', () => this.#onClose(exchange));
    // A client that disconnects mid-upload makes req emit 'error'; the close handler records it.
    req.on('error', noop);

    if (entry.method === 'GET' || entry.method === 'HEAD') {
      req.resume();
      this.#dispatch(exchange, undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= this.#options.maxBodyBytes) {
        chunks.push(chunk);
      } else if (!res.headersSent) {
        chunks.length = 0;
        const extra = ['connection', 'close'];
        exchange.error(
          413,
          'Request body too large.',
          'invalid_request_error',
          'request_too_large',
          null,
          extra,
        );
      }
    });
    req.on('end', () => {
      if (res.headersSent) return;
      const raw = chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString();
      this.#dispatch(exchange, raw);
    });
  }

  #onClose(exchange: Exchange): void {
    const { entry, res } = exchange;
    this.#stats.inFlight--;
    entry.finishedAt = this.#options.clock();
    if (exchange.timer !== undefined) clearTimeout(exchange.timer);
    if (exchange.interval !== undefined) clearInterval(exchange.interval);
    exchange.sequence?.cancel();
    if (!res.writableFinished && !exchange.resetByServer && this.#closing === undefined) {
      entry.aborted = true;
      this.#stats.aborted++;
    }
  }

  #dispatch(exchange: Exchange, raw: string | undefined): void {
    try {
      this.#answer(exchange, raw);
    } catch (error) {
      if (exchange.res.headersSent) {
        exchange.res.destroy();
      } else if (error instanceof InvalidRequest) {
        exchange.error(
          error.status,
          error.message,
          'invalid_request_error',
          error.code,
          error.param,
        );
      } else {
        // A throwing script or faultFor hook: report it to the client rather than crash the server.
        const message = `Simulator error: ${error instanceof Error ? error.message : String(error)}`;
        exchange.error(500, message, 'server_error', 'simulator_error');
      }
    }
  }

  #answer(exchange: Exchange, raw: string | undefined): void {
    const options = this.#options;
    const { entry, req } = exchange;
    const { authorization } = options;
    if (authorization !== undefined && req.headers.authorization !== authorization) {
      exchange.error(
        401,
        'Incorrect API key provided.',
        'invalid_request_error',
        'invalid_api_key',
      );
      return;
    }
    const route = routeOf(entry.method, entry.path);
    if (route === undefined) {
      throw new InvalidRequest(`Invalid URL (${entry.method} ${entry.path})`, null, null, 404);
    }
    if (options.needsRandom) exchange.random = createRandom(mix(options.seed, entry.seq));

    if (route === 'metrics' || route === 'slots' || route === 'props' || route === 'engine') {
      this.#answerHint(exchange, route);
      return;
    }
    if (route === 'models' || route === 'model') {
      const body =
        route === 'models' ? this.#modelsBody : modelJson(this.#checkModel(modelId(entry.path)));
      if (!this.#injectFault(exchange, undefined)) exchange.deliverJson(body, undefined, 0);
      return;
    }

    const body = parseBody(raw ?? '');
    if (options.logBodies) entry.body = body;
    exchange.limited = true;
    if (route === 'embeddings') {
      const plan = planEmbeddings(body);
      this.#checkModel(plan.model);
      if (this.#injectFault(exchange, body)) return;
      if (this.#rateLimited(exchange, plan.model, plan.promptTokens)) return;
      const encoding: EmbeddingEncoding =
        !plan.base64 || options.ignoreEncodingFormat
          ? 'float'
          : options.zeroBase64Embeddings
            ? 'zero-base64'
            : 'base64';
      const encoded = plan.inputs.map((input) =>
        this.#cache.encoded(input, plan.model, plan.dimensions, encoding),
      );
      this.#stats.promptTokens += plan.promptTokens;
      this.#stats.embeddings += encoded.length;
      exchange.deliverJson(embeddingsJson(plan.model, encoded, plan.promptTokens), plan.model, 0);
      return;
    }

    const plan =
      route === 'chat'
        ? planChat(body)
        : route === 'responses'
          ? planResponse(body)
          : planCompletion(body);
    entry.stream = plan.stream;
    this.#checkModel(plan.model);
    if (this.#injectFault(exchange, body)) return;
    if (this.#rateLimited(exchange, plan.model, plan.admissionTokens)) return;
    const kind: AnswerKind =
      route === 'chat' ? 'chat' : route === 'responses' ? 'response' : 'completion';
    this.#generate(exchange, kind, body, plan);
  }

  /** Server hints about the engine (hints.ts); outside `/v1`, no faults or rate limits. */
  #answerHint(exchange: Exchange, route: 'metrics' | 'slots' | 'props' | 'engine'): void {
    const state = this.engineState();
    const { path, method } = exchange.entry;
    if (state === undefined)
      throw new InvalidRequest(`Invalid URL (${method} ${path})`, null, null, 404);
    if (route === 'metrics') {
      const model = this.#options.models[0] ?? 'volley-sim-1';
      exchange.send(200, PROMETHEUS_TYPE, metricsText(state, model));
    } else {
      const body =
        route === 'slots'
          ? slotsJson(state)
          : route === 'props'
            ? propsJson(state)
            : JSON.stringify(state);
      exchange.send(200, 'application/json', body);
    }
  }

  #checkModel(model: string): string {
    const options = this.#options;
    if (!options.acceptAnyModel && !options.modelSet.has(model)) {
      const message = `The model \`${model}\` does not exist or you do not have access to it.`;
      throw new InvalidRequest(message, null, 'model_not_found', 404);
    }
    return model;
  }

  #generate(
    exchange: Exchange,
    kind: AnswerKind,
    body: Record<string, unknown>,
    plan: GenerationPlan,
  ): void {
    const { script, tokensPerSecond } = this.#options;
    const engine = this.#options.engine === undefined ? undefined : this.#engine;
    // The engine models a load test: answers run to max_tokens, as servers do with ignore_eos.
    const toCap = engine !== undefined || ignoresEos(body);
    const choices = new Array<TokenizedText>(plan.choiceCount);
    let completion = 0;
    let steps = 0;
    for (let i = 0; i < plan.choiceCount; i++) {
      const scripted = script?.({ path: exchange.entry.path, body, choiceIndex: i });
      const choice =
        scripted !== undefined
          ? tokenizeText(String(scripted), plan.cap)
          : kind === 'chat'
            ? chatTokens(body, i, toCap)
            : kind === 'response'
              ? chatTokens(responseAsChat(body), i, toCap)
              : completionTokens(body, i, toCap);
      choices[i] = choice;
      completion += choice.tokens.length;
      steps = Math.max(steps, choice.tokens.length);
    }
    // One sequence per request (n > 1 and prompt arrays included), as long as its longest choice.
    const sequence = engine?.submit(exchange.arrivedAt, plan.promptTokens, steps);
    if (engine !== undefined && sequence === undefined) {
      this.#stats.queueFull++;
      const message = `The server is overloaded: the waiting queue is full (${engine.waiting} requests waiting).`;
      exchange.error(503, message, 'server_error', 'queue_full');
      return;
    }
    exchange.sequence = sequence;
    this.#stats.promptTokens += plan.promptTokens;
    this.#stats.completionTokens += completion;
    if (this.#options.tokenAccounting === 'usage') {
      this.#limiter?.settleTokens(
        plan.admissionTokens,
        plan.promptTokens + completion,
        this.#options.clock(),
      );
    }
    const suffix = exchange.entry.requestId.slice(4);
    const answer: Answer = {
      id:
        kind === 'response'
          ? `resp_${suffix}`
          : `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${suffix}`,
      created: Math.floor(Date.now() / 1000),
      model: plan.model,
      choices,
      promptTokens: plan.promptTokens,
      completionTokens: completion,
      includeUsage: plan.includeUsage,
    };
    if (sequence !== undefined) {
      sequence.listener = plan.stream
        ? exchange.engineStream(renderFrames(answer, kind, body), steps, kind, plan.model)
        : exchange.engineJson(renderJson(answer, kind, body), plan.model);
    } else if (plan.stream) {
      exchange.deliverStream(renderFrames(answer, kind, body), steps, kind, plan.model);
    } else {
      const json = renderJson(answer, kind, body);
      exchange.deliverJson(
        json,
        plan.model,
        tokensPerSecond > 0 ? (steps * 1000) / tokensPerSecond : 0,
      );
    }
  }

  /** Picks this request's fault; answers now and returns true when the fault replaces the answer. */
  #injectFault(exchange: Exchange, body: unknown): boolean {
    const chosen = this.#chooseFault(exchange, body);
    if (chosen === undefined) return false;
    const options = this.#options;
    const { kind } = chosen;
    exchange.entry.fault = kind;
    this.#stats.byFault[kind] = (this.#stats.byFault[kind] ?? 0) + 1;
    if (isDeliveryFault(kind)) {
      const slowMs = chosen.slowMs ?? options.slowMs;
      exchange.fault = { kind, slowMs, keepaliveMs: chosen.keepaliveMs ?? options.keepaliveMs };
      return false;
    }
    exchange.answerWithFault(kind, chosen.retryAfterMs ?? options.retryAfterMs);
    return true;
  }

  #chooseFault(exchange: Exchange, body: unknown): Fault | undefined {
    const options = this.#options;
    const { req, entry } = exchange;
    const header = req.headers['x-volley-sim-fault'];
    if (header !== undefined) {
      if (isFaultKind(header)) return { kind: header };
      const shown = JSON.stringify(String(header).slice(0, 64));
      const message = `Unknown fault kind in x-volley-sim-fault: ${shown}`;
      throw new InvalidRequest(message, null, 'unknown_fault_kind');
    }
    if (options.faultFor !== undefined) {
      const chosen = options.faultFor({ path: entry.path, body, index: entry.seq });
      if (chosen !== undefined) {
        const fault = typeof chosen === 'string' ? { kind: chosen } : chosen;
        if (isFaultKind(fault.kind)) return fault;
        throw new Error(`faultFor returned an unknown fault kind: ${String(fault.kind)}`);
      }
    }
    if (this.#outageUntil > 0 && options.clock() < this.#outageUntil) {
      return { kind: options.outageKind };
    }
    if (exchange.random !== undefined && options.faultPicker.active) {
      const kind = options.faultPicker.pick(exchange.random);
      if (kind !== undefined) return { kind };
    }
    return undefined;
  }

  /** Spends from the buckets, or answers 429 with OpenAI's headers and returns true. */
  #rateLimited(exchange: Exchange, model: string, tokens: number): boolean {
    const limiter = this.#limiter;
    if (limiter === undefined) return false;
    const rejection = limiter.admit(tokens, this.#options.clock());
    if (rejection === undefined) return false;
    this.#stats.rateLimited++;
    const waitMs = Math.ceil(rejection.waitMs);
    const { kind, limit } = rejection;
    const message =
      `Rate limit reached for ${model} on ${kind} per min (${kind === 'requests' ? 'RPM' : 'TPM'}): ` +
      `Limit ${limit}, Requested ${kind === 'requests' ? 1 : tokens}. ` +
      `Please try again in ${formatGoDuration(waitMs)}.`;
    const extra = [
      'retry-after',
      String(Math.ceil(waitMs / 1000)),
      'retry-after-ms',
      String(waitMs),
    ];
    exchange.entry.retryAfterMs = waitMs;
    exchange.error(429, message, kind, 'rate_limit_exceeded', null, extra);
    return true;
  }
}

/** The JSON body of an answer of this kind. */
function renderJson(answer: Answer, kind: AnswerKind, body: Record<string, unknown>): string {
  if (kind === 'response') return responseJson(answer, body);
  return kind === 'chat' ? chatJson(answer) : completionJson(answer);
}

/** The SSE frames of an answer of this kind (layout in `streamFrames`). */
function renderFrames(answer: Answer, kind: AnswerKind, body: Record<string, unknown>): string[] {
  return kind === 'response' ? responseStreamFrames(answer, body) : streamFrames(answer, kind);
}

function modelId(path: string): string {
  try {
    return decodeURIComponent(path.slice(MODEL_PREFIX.length));
  } catch {
    throw new InvalidRequest(`Invalid URL (GET ${path})`, null, null, 404);
  }
}

function noop(): void {}

/** The Prometheus text exposition format's content type. */
const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Starts an OpenAI-compatible simulator and resolves once it listens. Options are validated here
 * (a {@link SimulatorOptionError} names the bad one).
 *
 * @example
 * const sim = await createSimulator({ latency: { headersMs: 20 }, limits: { rpm: 600 } });
 * const client = new OpenAI({ baseURL: sim.url, apiKey: 'test', maxRetries: 0 });
 * // ... run the code under test ...
 * expect(sim.stats().byStatus[200]).toBe(100);
 * await sim.close();
 */
export async function createSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = new SimulatorServer(options, resolveOptions(options));
  await simulator.listen();
  return simulator;
}
