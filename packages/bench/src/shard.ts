/**
 * A load-generating shard: one event loop (a worker thread, or the main loop with `threads: 0`)
 * with its own keep-alive connections (http1.ts), sending its share of a phase and timing every
 * request.
 *
 * Why not Volley's own dispatcher (@volley/workers): that path exists to get every call answered
 * (the supervisor retries, the token bucket paces, Piscina hands out tasks). A benchmark must do
 * the opposite: never retry, never slow itself down, and send at the planned instant; and a
 * Piscina task per request costs 40-150 µs (architecture brief), the wrong model for a load
 * generator (research/bench-anchors.md, autocannon#289). What is shared is the SSE framing
 * (`SseParser`). Why not undici either: see http1.ts (its per-request cost was more than
 * autocannon's whole cost per request).
 *
 * Requests are spread over the endpoint's replicas, with hedging when asked (replicas.ts).
 * Each request is one pre-serialised buffer written to a free connection, and the timestamps are
 * taken where the events happen: `onSent` just before the bytes are written (the actual send),
 * `onHead`, and `onData` for each body chunk *before* SSE framing and JSON parsing, so parsing
 * cost never shows up as server latency.
 *
 * Open mode paces against the shared plan with one timer: every request due by now is sent, and
 * the timer is set for the next one; a late wake-up sends the backlog at once (each request keeps
 * its intended time, so the lateness is measured, not hidden). Lane mode runs a fixed number of
 * one-at-a-time lanes that take request indices from a counter shared by every shard.
 */

import type { IntervalHistogram } from 'node:perf_hooks';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { SseParser } from '@volley/workers';
import type { Histogram } from 'hdr-histogram-js';
import { encodeHistogram, LOOP_RESOLUTION_MS, loopDelayMs, newHistogram } from './histogram.js';
import type { Exchange, ResponseHead } from './http1.js';
import { TIMEOUT } from './http1.js';
import type { PhasePlan, ShardInit, ShardPhaseSummary, ShardToMain } from './protocol.js';
import { ERROR_CLASSES, HTTP_ERROR_BASE, R, RECORD_FIELDS } from './protocol.js';
import { Replicas } from './replicas.js';

/** Records are flushed to the main thread at least this often... */
const FLUSH_INTERVAL_MS = 100;
/**
 * ...or when this many are waiting. Each post wakes the main thread, and on a busy 2-core
 * machine the wake-up can cost the shard its time slice: with 512 a closed loop at 27k req/s
 * posted 60 times a second and spent 0.7 ms of wall time per post (105 ms in 134 posts,
 * 2026-12-07). At 4096 the timer sends most batches.
 */
const FLUSH_RECORDS = 4096;
/** Largest SSE event or JSON body kept in memory (a hostile server cannot grow us without bound). */
const MAX_BODY_CHARS = 64 * 1024 * 1024;
/**
 * Sends started in one go when the plan is behind (a late timer, a starved thread). A client that
 * fell behind sends its backlog in bursts with I/O in between, not in one loop that would also
 * delay reading the responses. Each request still keeps its intended time, so the lateness shows.
 */
const MAX_SENDS_PER_TURN = 128;
/** The simulator engine's per-request truth (packages/sim, engine model). */
const SIM_TIMING = 'x-volley-sim-timing';

const E = Object.fromEntries(ERROR_CLASSES.map((name, i) => [name, i])) as Record<
  (typeof ERROR_CLASSES)[number],
  number
>;

type Post = (message: ShardToMain) => void;
type CountTokens = (text: string) => number;

/** A running shard; see {@link createShard}. */
export interface Shard {
  /** Resolves once the shard can start a phase on time (its tokenizer is loaded). */
  readonly ready: Promise<void>;
  runPhase(plan: PhasePlan): void;
  stop(runId: number): void;
  close(): Promise<void>;
}

/**
 * Creates a shard that reports through `post` (a worker's `parentPort.postMessage`, or a direct
 * call on the main loop).
 */
export function createShard(init: ShardInit, post: Post): Shard {
  const headers = { ...init.headers, 'content-type': 'application/json' };
  const replicas = new Replicas(init, headers, [SIM_TIMING]);
  let phase: PhaseRun | undefined;
  let countTokens: CountTokens | undefined;
  // Loaded before the shard says it is ready: loading it when a phase starts (~150 ms) would
  // make the first sends of the phase late.
  const ready = import('gpt-tokenizer').then(
    (tokenizer) => {
      countTokens = (text) =>
        tokenizer.countTokens(text, { disallowedSpecial: new Set(), allowedSpecial: new Set() });
      // The first count builds the encoder's tables (~40 ms of CPU): paid now, not inside the
      // first measured phase, where it showed as 2 µs per request of a 20,000-request run.
      countTokens('Warm up the tokenizer before the first phase.');
    },
    () => {
      // No tokenizer: sampled requests keep NaN and the report says no re-count was possible.
    },
  );

  return {
    ready,
    runPhase(plan) {
      phase = new PhaseRun(plan, init, replicas, post, countTokens);
      phase.start();
    },
    stop(runId) {
      if (phase?.plan.runId === runId) phase.stopSending();
    },
    async close() {
      phase?.stopSending();
      await replicas.close();
    },
  };
}

/** One phase on one shard. */
class PhaseRun {
  readonly plan: PhasePlan;
  readonly #init: ShardInit;
  readonly #replicas: Replicas;
  readonly #post: Post;
  readonly #countTokens: CountTokens | undefined;
  readonly #schedule: Float64Array | undefined;
  readonly #counter: Int32Array | undefined;
  /** `performance.now()` of offset 0 on this thread. */
  readonly #origin: number;
  readonly itl: Histogram;
  readonly #loopDelay: IntervalHistogram;
  readonly #utilizationStart = performance.eventLoopUtilization();
  #records = new Float64Array(FLUSH_RECORDS * RECORD_FIELDS);
  #pending = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #pumpTimer: NodeJS.Timeout | undefined;
  #next: number;
  #inFlight = 0;
  #sent = 0;
  #lanesRunning = 0;
  readonly #laneTimers = new Set<NodeJS.Timeout>();
  readonly #freeRecords: Float64Array[] = [];
  #stopping = false;
  #finished = false;

  constructor(
    plan: PhasePlan,
    init: ShardInit,
    replicas: Replicas,
    post: Post,
    countTokens: CountTokens | undefined,
  ) {
    this.plan = plan;
    this.#init = init;
    this.#replicas = replicas;
    this.#post = post;
    this.#countTokens = countTokens;
    this.#schedule = plan.schedule === undefined ? undefined : new Float64Array(plan.schedule);
    this.#counter = plan.counter === undefined ? undefined : new Int32Array(plan.counter);
    this.#origin = plan.startAt - performance.timeOrigin;
    this.#next = init.shard;
    this.itl = newHistogram();
    this.#loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  }

  now(): number {
    return performance.now() - this.#origin;
  }

  start(): void {
    this.#loopDelay.enable();
    this.#flushTimer = setInterval(() => this.#flush(), FLUSH_INTERVAL_MS);
    const wait = Math.max(0, -this.now());
    if (this.plan.mode === 'open') {
      this.#pumpTimer = setTimeout(() => this.#pump(), wait);
    } else {
      this.#lanesRunning = this.plan.lanes;
      setTimeout(() => {
        for (let lane = 0; lane < this.plan.lanes; lane++) this.#laneNext();
      }, wait);
    }
    this.#maybeFinish();
  }

  stopSending(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#pumpTimer !== undefined) clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    this.#lanesRunning = 0;
    for (const timer of this.#laneTimers) clearTimeout(timer);
    this.#laneTimers.clear();
    this.#maybeFinish();
  }

  #pastDeadline(t: number): boolean {
    const { stopAfterMs } = this.plan;
    return stopAfterMs !== undefined && t >= stopAfterMs;
  }

  /** Open mode: send everything due, then sleep until the next intended time. */
  #pump(): void {
    this.#pumpTimer = undefined;
    const schedule = this.#schedule as Float64Array;
    const { count } = this.plan;
    const { shards } = this.#init;
    const t = this.now();
    let burst = 0;
    while (this.#next < count && !this.#stopping && burst < MAX_SENDS_PER_TURN) {
      const intended = schedule[this.#next] as number;
      if (intended > t) break;
      if (this.#pastDeadline(intended)) {
        this.#next = count;
        break;
      }
      this.#send(this.#next, intended, intended, false);
      this.#next += shards;
      burst++;
    }
    if (this.#next < count && !this.#stopping) {
      if (burst >= MAX_SENDS_PER_TURN) {
        // A backlog: let responses be read between bursts, then go on at once.
        this.#pumpTimer = setTimeout(() => this.#pump(), 0);
        return;
      }
      const delay = (schedule[this.#next] as number) - this.now();
      this.#pumpTimer = setTimeout(() => this.#pump(), Math.max(0, delay));
    } else {
      this.#stopping = true;
      this.#maybeFinish();
    }
  }

  /** Lane mode: a lane that is free takes the next request index, waits for its time, sends. */
  #laneNext(): void {
    if (this.#stopping) {
      this.#laneDone();
      return;
    }
    const index = Atomics.add(this.#counter as Int32Array, 0, 1);
    const freeAt = this.now();
    if (index >= this.plan.count || this.#pastDeadline(freeAt)) {
      this.#laneDone();
      return;
    }
    // Closed loop: the request is intended for the moment its lane became free.
    const intended = this.#schedule === undefined ? freeAt : (this.#schedule[index] as number);
    const slot = Math.max(freeAt, intended);
    if (intended > freeAt) {
      const timer = setTimeout(() => {
        this.#laneTimers.delete(timer);
        if (this.#stopping || this.#pastDeadline(intended)) this.#laneDone();
        else this.#send(index, intended, slot, true);
      }, intended - freeAt);
      this.#laneTimers.add(timer);
    } else {
      this.#send(index, intended, slot, true);
    }
  }

  #laneDone(): void {
    if (this.#lanesRunning > 0) this.#lanesRunning--;
    if (this.#lanesRunning === 0) this.#stopping = true;
    this.#maybeFinish();
  }

  /**
   * Sends request `index`; when it ends, a lane (closed loop) takes the next index at once. The
   * handler calls {@link PhaseRun.settle} itself: no closure or result object per request.
   */
  #send(index: number, intended: number, slot: number, lane: boolean): void {
    const { plan } = this;
    const prompt = plan.promptStart + (index % plan.promptCount);
    const record = this.#freeRecords.pop() ?? new Float64Array(RECORD_FIELDS);
    record.fill(Number.NaN);
    record[R.index] = index;
    record[R.intended] = intended;
    record[R.slot] = slot;
    record[R.dispatch] = this.now();
    record[R.contentEvents] = 0;
    record[R.error] = 0;
    const recount =
      plan.recountStride > 0 && this.#countTokens !== undefined && index % plan.recountStride === 0;
    this.#inFlight++;
    this.#sent++;
    this.#replicas.send(prompt, new RequestHandler(this, record, recount, lane));
  }

  /** A request ended (`text`: its content, kept for sampled requests only). */
  settle(record: Float64Array, text: string | undefined, lane: boolean): void {
    this.#inFlight--;
    if (text !== undefined && this.#countTokens !== undefined) {
      record[R.recount] = this.#countTokens(text);
    }
    this.#push(record);
    // Copied into the batch: the array can carry the next request (typed-array allocation
    // showed up in profiles at thousands of requests per second).
    this.#freeRecords.push(record);
    if (lane) this.#laneNext();
    else this.#maybeFinish();
  }

  #push(record: Float64Array): void {
    if ((this.#pending + 1) * RECORD_FIELDS > this.#records.length) this.#flush();
    this.#records.set(record, this.#pending * RECORD_FIELDS);
    this.#pending++;
    if (this.#pending >= FLUSH_RECORDS) this.#flush();
  }

  #flush(): void {
    const count = this.#pending;
    const records = this.#records.subarray(0, count * RECORD_FIELDS).slice();
    this.#pending = 0;
    this.#post({
      type: 'batch',
      shard: this.#init.shard,
      runId: this.plan.runId,
      records,
      count,
      inFlight: this.#inFlight,
      sent: this.#sent,
    });
  }

  #maybeFinish(): void {
    if (this.#finished || !this.#stopping || this.#inFlight > 0 || this.#lanesRunning > 0) return;
    this.#finished = true;
    if (this.#flushTimer !== undefined) clearInterval(this.#flushTimer);
    this.#flush();
    this.#loopDelay.disable();
    const summary: ShardPhaseSummary = {
      sent: this.#sent,
      itlHistogram: encodeHistogram(this.itl),
      loopDelayMs: loopDelayMs(this.#loopDelay),
      loopUtilization: performance.eventLoopUtilization(this.#utilizationStart).utilization,
      elapsedMs: this.now(),
      ...this.#replicas.takeCounts(),
    };
    this.#post({ type: 'done', shard: this.#init.shard, runId: this.plan.runId, summary });
  }
}

/** One request's exchange; every timestamp is taken first thing in its callback. */
class RequestHandler implements Exchange {
  readonly #run: PhaseRun;
  readonly #record: Float64Array;
  readonly #lane: boolean;
  #sse: SseParser | undefined;
  /**
   * A JSON body's bytes as a latin1 string, one char per byte (the client reuses its read buffer;
   * this copy costs less than a Buffer copy in an array). For an ASCII body, the usual case, it
   * is already the text.
   */
  #json: string | undefined;
  #text: string[] | undefined;
  #chunkAt = 0;
  #sawDone = false;
  #finished = false;
  #streamError = false;
  #settled = false;

  constructor(run: PhaseRun, record: Float64Array, keepText: boolean, lane: boolean) {
    this.#run = run;
    this.#record = record;
    this.#lane = lane;
    if (keepText) this.#text = [];
  }

  onSent(): void {
    this.#record[R.sent] = this.#run.now();
  }

  onHead(head: ResponseHead): void {
    const record = this.#record;
    record[R.headers] = this.#run.now();
    record[R.status] = head.status;
    if (head.status < 200 || head.status >= 300) {
      record[R.error] = HTTP_ERROR_BASE + head.status;
      return;
    }
    const timing = head.captured.get(SIM_TIMING);
    if (timing !== undefined) this.#serverTiming(timing);
    if (head.contentType.includes('text/event-stream')) {
      this.#sse = new SseParser(
        {
          onData: (data) => this.#event(data),
          onComment: (text) => {
            const trimmed = text.trimStart();
            if (trimmed.startsWith(SIM_TIMING))
              this.#serverTiming(trimmed.slice(SIM_TIMING.length));
          },
        },
        MAX_BODY_CHARS,
      );
    } else {
      this.#json = '';
    }
  }

  onData(chunk: Buffer): void {
    const t = this.#run.now();
    this.#chunkAt = t;
    const record = this.#record;
    if (record[R.error] !== 0) return;
    if (this.#sse !== undefined) {
      try {
        this.#sse.push(chunk);
      } catch {
        this.#fail(E.bad_response);
      }
      return;
    }
    if (Number.isNaN(record[R.firstEvent] as number)) record[R.firstEvent] = t;
    if (this.#json === undefined) return;
    if (this.#json.length + chunk.length > MAX_BODY_CHARS) this.#fail(E.bad_response);
    else this.#json += chunk.toString('latin1');
  }

  onComplete(): void {
    const record = this.#record;
    record[R.end] = this.#run.now();
    if (record[R.error] === 0) {
      if (this.#sse !== undefined) {
        try {
          this.#sse.end();
        } catch {
          this.#fail(E.bad_response);
        }
        if (record[R.error] === 0) {
          if (this.#streamError) this.#fail(E.stream_error);
          else if (!this.#sawDone && !this.#finished) this.#fail(E.truncated_stream);
          else if (record[R.contentEvents] === 0) this.#fail(E.empty_response);
        }
      } else {
        this.#completeJson();
      }
    }
    this.#done();
  }

  onError(code: string): void {
    const record = this.#record;
    record[R.end] = this.#run.now();
    if (record[R.error] === 0) record[R.error] = classifyTransport(code);
    this.#done();
  }

  #done(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#run.settle(
      this.#record,
      this.#text === undefined ? undefined : this.#text.join(''),
      this.#lane,
    );
  }

  #fail(code: number): void {
    if (this.#record[R.error] === 0) this.#record[R.error] = code;
  }

  /** One SSE data event; every event of a chunk carries that chunk's arrival time. */
  #event(data: string): void {
    const t = this.#chunkAt;
    const record = this.#record;
    if (Number.isNaN(record[R.firstEvent] as number)) record[R.firstEvent] = t;
    if (data === '[DONE]') {
      this.#sawDone = true;
      return;
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(data) as Chunk;
    } catch {
      this.#fail(E.bad_response);
      return;
    }
    if (chunk.error !== undefined && chunk.error !== null) this.#streamError = true;
    const usage = chunk.usage;
    if (usage !== undefined && usage !== null) {
      if (typeof usage.completion_tokens === 'number')
        record[R.outputTokens] = usage.completion_tokens;
      if (typeof usage.prompt_tokens === 'number') record[R.promptTokens] = usage.prompt_tokens;
    }
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (choice === undefined) return;
    if (typeof choice.finish_reason === 'string') this.#finished = true;
    const text = contentOf(choice);
    if (text === undefined) return;
    const last = record[R.lastToken] as number;
    if (Number.isNaN(record[R.firstToken] as number)) {
      record[R.firstToken] = t;
    } else {
      const gap = t - last;
      if (!(gap <= (record[R.maxGap] as number))) record[R.maxGap] = gap;
      if (this.#run.plan.measured) this.#run.itl.recordValue(Math.max(1, Math.round(gap * 1000)));
    }
    record[R.lastToken] = t;
    record[R.contentEvents] = (record[R.contentEvents] as number) + 1;
    this.#text?.push(text);
  }

  /**
   * A JSON answer. Only sampled requests (their text is re-counted) and bodies whose usage cannot
   * be found by a scan are parsed: a full `JSON.parse` of every response is the largest cost a
   * load generator can skip, and the usage numbers are all the metrics need. A quote preceded by
   * a backslash is inside a string, so content cannot fake the keys.
   */
  #completeJson(): void {
    const record = this.#record;
    const bytes = this.#json ?? '';
    // Otherwise decoded whole, so a character split between two reads stays one character.
    const text = NON_ASCII.test(bytes) ? Buffer.from(bytes, 'latin1').toString('utf8') : bytes;
    if (this.#text === undefined) {
      const completion = lastNumber(text, COMPLETION_TOKENS);
      if (completion !== undefined && CHOICES.test(text) && !TOP_ERROR.test(text)) {
        record[R.outputTokens] = completion;
        const prompt = lastNumber(text, PROMPT_TOKENS);
        if (prompt !== undefined) record[R.promptTokens] = prompt;
        return;
      }
    }
    let body: ChatOrCompletion;
    try {
      body = JSON.parse(text) as ChatOrCompletion;
    } catch {
      this.#fail(E.bad_response);
      return;
    }
    if (body.error !== undefined && body.error !== null) {
      this.#fail(E.stream_error);
      return;
    }
    const choice = Array.isArray(body.choices) ? body.choices[0] : undefined;
    const content = choice?.message?.content ?? choice?.text;
    if (typeof content !== 'string') {
      this.#fail(E.bad_response);
      return;
    }
    this.#text?.push(content);
    const usage = body.usage;
    if (usage !== undefined && usage !== null) {
      if (typeof usage.completion_tokens === 'number')
        record[R.outputTokens] = usage.completion_tokens;
      if (typeof usage.prompt_tokens === 'number') record[R.promptTokens] = usage.prompt_tokens;
    }
  }

  /** `x-volley-sim-timing`: the simulator engine's own times for this request. */
  #serverTiming(json: string): void {
    try {
      const timing = JSON.parse(json) as Record<string, unknown>;
      const record = this.#record;
      const put = (field: number, value: unknown): void => {
        if (typeof value === 'number' && Number.isFinite(value)) record[field] = value;
      };
      put(R.serverQueued, timing.queuedMs);
      put(R.serverTtft, timing.ttftMs);
      put(R.serverTpot, timing.tpotMs);
      put(R.serverE2e, timing.e2eMs);
      put(R.serverOutputTokens, timing.outputTokens);
    } catch {
      // A malformed hint is ignored: it is the server's self-report, not the measurement.
    }
  }
}

interface Usage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
}

interface Chunk {
  choices?: ChunkChoice[];
  usage?: Usage | null;
  error?: unknown;
}

interface ChunkChoice {
  delta?: {
    content?: unknown;
    reasoning_content?: unknown;
    reasoning?: unknown;
    tool_calls?: unknown;
  };
  text?: unknown;
  finish_reason?: unknown;
}

interface ChatOrCompletion {
  choices?: Array<{ message?: { content?: unknown }; text?: unknown }>;
  usage?: Usage | null;
  error?: unknown;
}

/**
 * The text an event carries, if it carries any: chat content, reasoning (vLLM and AIPerf count
 * reasoning tokens as output too), tool-call arguments, or completion text. A role-only first
 * chunk carries none, so it never counts as the first token.
 */
function contentOf(choice: ChunkChoice): string | undefined {
  const { delta } = choice;
  if (delta !== undefined) {
    for (const value of [delta.content, delta.reasoning_content, delta.reasoning]) {
      if (typeof value === 'string' && value.length > 0) return value;
    }
    if (Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0) {
      return JSON.stringify(delta.tool_calls);
    }
    return undefined;
  }
  return typeof choice.text === 'string' && choice.text.length > 0 ? choice.text : undefined;
}

const COMPLETION_TOKENS = '"completion_tokens"';
const PROMPT_TOKENS = '"prompt_tokens"';
const CHOICES = /(?<!\\)"choices"\s*:\s*\[/;
const TOP_ERROR = /^\s*\{\s*"error"\s*:/;

const NON_ASCII = /[\u0080-\u00ff]/;

/** What a regular expression's `\s` matches (the scan below replaced `\s*:\s*(\d+)`). */
function isSpace(c: number): boolean {
  return (
    c === 32 ||
    (c >= 9 && c <= 13) ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/**
 * The value of the last unescaped `"key": <digits>` in `text` (`quotedKey` with its quotes),
 * scanning back with `lastIndexOf`: no regular expression and no match object per response.
 */
function lastNumber(text: string, quotedKey: string): number | undefined {
  for (let at = text.lastIndexOf(quotedKey); at !== -1; at = text.lastIndexOf(quotedKey, at - 1)) {
    if (at === 0 || text.charCodeAt(at - 1) !== 92) {
      let i = at + quotedKey.length;
      while (isSpace(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) === 58) {
        i++;
        while (isSpace(text.charCodeAt(i))) i++;
        const start = i;
        for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i));
        if (i > start) return Number(text.slice(start, i));
      }
    }
    if (at === 0) break;
  }
  return undefined;
}

function classifyTransport(code: string): number {
  switch (code) {
    case TIMEOUT:
      return E.timeout;
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'EADDRNOTAVAIL':
      return E.connect_error;
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return E.connection_reset;
    case 'UND_ERR_ABORTED':
      return E.aborted;
    default:
      return E.transport_error;
  }
}
