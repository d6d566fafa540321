/**
 * The server model behind the `engine` option: one scheduler for the whole simulator, shaped like
 * vLLM's V1 engine loop (llama.cpp's slots and Ollama's parallel requests behave alike).
 *
 *   arrival ─► slot free? ──yes──► running (holds a slot) ─► next step ─► ... ─► done, slot freed
 *                  │ no                  ▲ FIFO, as slots free
 *                  ▼                     │
 *             waiting queue ─────────────┘   (full, with `maxWaiting`: 503 at once)
 *
 * One step is one forward pass over the batch, on one timer for the whole engine:
 *
 *   step = (decodeStepMs + decodeStepMsPerSequence × (sequences in the step − 1)
 *           + prefillMsPerToken × prompt tokens prefilled in the step) × jitter factor
 *
 * Prefill shares the step with decode, as vLLM V1 schedules it (chunked prefill, always on in V1):
 * "the scheduling policy prioritizes decode requests. It batches all pending decode requests
 * before scheduling any prefill operations. When there are available tokens in the
 * max_num_batched_tokens budget, it schedules pending prefills. If a pending prefill request
 * cannot fit into max_num_batched_tokens, it automatically chunks it." (vLLM docs,
 * docs/configuration/optimization.md, "Chunked Prefill"). So each running sequence that has
 * finished its prefill gets one token per step, and the rest of `maxBatchedTokens` goes to prompt
 * chunks in admission order; a prompt's prefill therefore lengthens the step every other sequence
 * is in (decode slows while prompts arrive), and the step that completes a prompt also samples its
 * first token. The default budget is vLLM's `DEFAULT_MAX_NUM_BATCHED_TOKENS` (2048), so short
 * prompts are prefilled whole in one step.
 *
 * What that predicts (tokens are one per decoded step; `p` prompt tokens, `L` output tokens):
 * - Idle engine: TTFT = prefillMsPerToken × p + decodeStepMs (the arrival starts a step at once),
 *   TPOT = decodeStepMs.
 * - Busy engine, n running (n ≤ slots): a request waits for the step in progress to end (up to one
 *   step), so TTFT ∈ [prefill + step(n), prefill + 2 × step(n)], with
 *   step(n) = decodeStepMs + decodeStepMsPerSequence × (n − 1) + prompts prefilled meanwhile;
 *   TPOT ≈ step(n), so decode speed per request drops as the batch grows. A closed-loop client
 *   sends its next request as an answer ends, just after the next step began: 2 × step(n).
 * - Throughput ≈ n / step(n) output tokens per second, rising with n up to `slots`, then flat: the
 *   knee. Beyond it requests queue: TTFT grows by about one answer's duration (L × step(slots))
 *   for every `slots` requests ahead in the queue, while TPOT stays at step(slots).
 *
 * Times are real (performance.now), not the `clock` option: steps run on real timers. Steps are
 * scheduled against the engine's own timeline, so a timer that fires late does not stretch the
 * model: every step that is due is processed in that one wake-up (its tokens written together),
 * and the mean step time stays what the formula says on a busy machine.
 */

import type { ResolvedEngineOptions } from './options.js';
import { createRandom, mix, type Random } from './random.js';

/** What the engine did for one answer: the truth a benchmark's figures are checked against. */
export interface SimEngineTiming {
  /** Time in the waiting queue, ms: from reaching the engine (body read) to getting a slot. */
  queuedMs: number;
  /** Prefill work charged to this request's prompt, ms (its share of the steps that ran it). */
  prefillMs: number;
  /** Arrival to the first content token written (streams) or decoded (JSON answers), ms. */
  ttftMs: number;
  /** Mean gap between output tokens after the first, ms; 0 with fewer than 2 tokens. */
  tpotMs: number;
  /** Arrival to the last byte of the answer, ms. */
  e2eMs: number;
  /** Tokens decoded. */
  outputTokens: number;
  /** Sequences holding a slot right after this one was admitted, itself included (≤ slots). */
  runningAtAdmission: number;
}

/**
 * How the engine tells a request about its progress. Never called synchronously from `submit`, so
 * the caller sets `sequence.listener` right after submitting.
 */
export interface EngineListener {
  /** `decoded` tokens are ready (≥ 1); at most once per engine wake-up. */
  onTokens(decoded: number): void;
  /** Every token is decoded; called after the last `onTokens`. */
  onDone(): void;
}

/** The engine's state, as `/sim/engine` reports it. */
export interface EngineState {
  slots: number;
  running: number;
  waiting: number;
  /** `null` when the queue is unbounded. */
  maxWaiting: number | null;
  maxBatchedTokens: number;
  prefillMsPerToken: number;
  decodeStepMs: number;
  decodeStepMsPerSequence: number;
  jitter: number;
  /** Counters since start. */
  admitted: number;
  completed: number;
  cancelled: number;
  rejected: number;
  steps: number;
}

type SequenceState = 'waiting' | 'running' | 'done' | 'cancelled';

/** A sequence's listener until the caller sets its own. */
const IGNORE: EngineListener = { onTokens() {}, onDone() {} };

/** One request inside the engine. */
export class Sequence {
  readonly arrivedAt: number;
  /** When it reached the engine: after its body was read and checked. */
  readonly queuedAt: number;
  readonly outputTokens: number;
  listener: EngineListener = IGNORE;
  readonly #engine: Engine;
  state: SequenceState = 'waiting';
  admittedAt = Number.NaN;
  runningAtAdmission = 0;
  prefillLeft: number;
  prefilled = false;
  prefillMs = 0;
  decoded = 0;
  firstTokenAt = Number.NaN;
  lastTokenAt = Number.NaN;
  /** Prompt tokens this sequence gets in the current step. */
  chunk = 0;
  /** Queued for a listener call at the end of this wake-up. */
  notify = false;

  constructor(
    engine: Engine,
    arrivedAt: number,
    queuedAt: number,
    promptTokens: number,
    outputTokens: number,
  ) {
    this.#engine = engine;
    this.arrivedAt = arrivedAt;
    this.queuedAt = queuedAt;
    this.prefillLeft = promptTokens;
    this.outputTokens = outputTokens;
  }

  /** Leaves the engine (the client went away): frees its slot or queue place now. Idempotent. */
  cancel(): void {
    this.#engine.cancel(this);
  }

  /** The truth for this answer, with `now` as its last byte. */
  timing(now: number): SimEngineTiming {
    const first = Number.isNaN(this.firstTokenAt) ? now : this.firstTokenAt;
    return {
      queuedMs: round(this.admittedAt - this.queuedAt),
      prefillMs: round(this.prefillMs),
      ttftMs: round(first - this.arrivedAt),
      tpotMs:
        this.decoded > 1 ? round((this.lastTokenAt - this.firstTokenAt) / (this.decoded - 1)) : 0,
      e2eMs: round(now - this.arrivedAt),
      outputTokens: this.decoded,
      runningAtAdmission: this.runningAtAdmission,
    };
  }
}

/** Microsecond resolution: enough for a benchmark to compare, short on the wire. */
function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Waiting-queue entries skipped at the front before the array is compacted. */
const COMPACT_AFTER = 1024;

/** The scheduler: slots, the waiting queue and the step timer. */
export class Engine {
  #config: ResolvedEngineOptions;
  readonly #random: Random;
  readonly #now: () => number;
  /** FIFO; cancelled entries stay until dequeued (`#waitingCount` is exact). */
  #waiting: Sequence[] = [];
  #waitingHead = 0;
  #waitingCount = 0;
  /** In admission order; finished and cancelled entries are dropped when the next step starts. */
  #running: Sequence[] = [];
  #runningCount = 0;
  /** The sequences in the step in progress and when it ends (engine time). */
  #inStep: Sequence[] = [];
  #stepEnd = 0;
  #timer: NodeJS.Timeout | undefined = undefined;
  #closed = false;
  readonly #counts = { admitted: 0, completed: 0, cancelled: 0, rejected: 0, steps: 0 };

  constructor(config: ResolvedEngineOptions, seed: number, now: () => number = performanceNow) {
    this.#config = config;
    // Its own stream (not a request's): step jitter must not depend on which request came first.
    this.#random = createRandom(mix(seed, 0x656e67));
    this.#now = now;
  }

  /** Applies new options from now on: a step in progress keeps its duration. */
  configure(config: ResolvedEngineOptions): void {
    this.#config = config;
    this.#admitWaiting(this.#now());
    this.#wakeIfIdle();
  }

  get running(): number {
    return this.#runningCount;
  }

  get waiting(): number {
    return this.#waitingCount;
  }

  get slots(): number {
    return this.#config.slots;
  }

  state(): EngineState {
    const config = this.#config;
    return {
      slots: config.slots,
      running: this.#runningCount,
      waiting: this.#waitingCount,
      maxWaiting: Number.isFinite(config.maxWaiting) ? config.maxWaiting : null,
      maxBatchedTokens: config.maxBatchedTokens,
      prefillMsPerToken: config.prefillMsPerToken,
      decodeStepMs: config.decodeStepMs,
      decodeStepMsPerSequence: config.decodeStepMsPerSequence,
      jitter: config.jitter,
      ...this.#counts,
    };
  }

  /**
   * Takes a request (that arrived over HTTP at `arrivedAt`, engine time): it gets a slot now if
   * one is free, else joins the waiting queue; `undefined` when the queue is full (answer 503).
   */
  submit(arrivedAt: number, promptTokens: number, outputTokens: number): Sequence | undefined {
    const config = this.#config;
    if (this.#runningCount >= config.slots && this.#waitingCount >= config.maxWaiting) {
      this.#counts.rejected++;
      return undefined;
    }
    const now = this.#now();
    const sequence = new Sequence(this, arrivedAt, now, promptTokens, outputTokens);
    if (this.#runningCount < config.slots) {
      this.#admit(sequence, now);
    } else {
      this.#waiting.push(sequence);
      this.#waitingCount++;
    }
    this.#wakeIfIdle();
    return sequence;
  }

  /** Removes a sequence that has not finished; its slot goes to the next in the queue at once. */
  cancel(sequence: Sequence): void {
    if (sequence.state === 'waiting') {
      this.#waitingCount--;
    } else if (sequence.state === 'running') {
      this.#runningCount--;
      this.#admitWaiting(this.#now());
      if (this.#runningCount === 0) this.#stop();
    } else {
      return;
    }
    sequence.state = 'cancelled';
    this.#counts.cancelled++;
  }

  /** Stops the timer for good; connections closing cancel what is left. */
  close(): void {
    this.#closed = true;
    this.#stop();
  }

  /** An idle engine with work starts a step now; a busy one picks new work up at its next step. */
  #wakeIfIdle(): void {
    if (this.#timer !== undefined || this.#closed || this.#runningCount === 0) return;
    this.#startStep(this.#now());
    this.#arm();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#inStep = [];
  }

  #admit(sequence: Sequence, at: number): void {
    sequence.state = 'running';
    // A request that arrived while a late timer caught up is not admitted before it arrived.
    sequence.admittedAt = Math.max(at, sequence.queuedAt);
    this.#runningCount++;
    sequence.runningAtAdmission = this.#runningCount;
    this.#running.push(sequence);
    this.#counts.admitted++;
  }

  #admitWaiting(at: number): void {
    const waiting = this.#waiting;
    while (this.#runningCount < this.#config.slots && this.#waitingCount > 0) {
      const next = waiting[this.#waitingHead]!;
      this.#waitingHead++;
      if (next.state !== 'waiting') continue;
      this.#waitingCount--;
      this.#admit(next, at);
    }
    if (this.#waitingHead > COMPACT_AFTER && this.#waitingHead * 2 > waiting.length) {
      this.#waiting = waiting.slice(this.#waitingHead);
      this.#waitingHead = 0;
    }
  }

  /**
   * Composes the step starting at `start` (decode first, then prompt chunks within the token
   * budget) and charges its time. Needs at least one running sequence.
   */
  #startStep(start: number): void {
    const config = this.#config;
    const running = this.#running.filter((sequence) => sequence.state === 'running');
    this.#running = running;
    // A step only takes sequences admitted by its start; if none were, it starts at the first.
    let earliest = Number.POSITIVE_INFINITY;
    for (const sequence of running) earliest = Math.min(earliest, sequence.admittedAt);
    if (earliest > start) start = earliest;

    const inStep: Sequence[] = [];
    let budget = config.maxBatchedTokens;
    for (const sequence of running) {
      if (sequence.prefilled && sequence.admittedAt <= start) {
        sequence.chunk = 0;
        inStep.push(sequence);
        budget--;
      }
    }
    let prefillTokens = 0;
    for (const sequence of running) {
      if (sequence.prefilled || sequence.admittedAt > start) continue;
      if (budget <= 0 && sequence.prefillLeft > 0) break;
      const chunk = Math.min(sequence.prefillLeft, budget);
      sequence.chunk = chunk;
      budget -= chunk;
      prefillTokens += chunk;
      inStep.push(sequence);
    }
    const factor = config.jitter > 0 ? 1 + config.jitter * (2 * this.#random() - 1) : 1;
    const prefillMs = config.prefillMsPerToken * factor;
    for (const sequence of inStep) sequence.prefillMs += sequence.chunk * prefillMs;
    const stepMs =
      (config.decodeStepMs + config.decodeStepMsPerSequence * Math.max(0, inStep.length - 1)) *
        factor +
      prefillTokens * prefillMs;
    this.#inStep = inStep;
    this.#stepEnd = start + stepMs;
    this.#counts.steps++;
  }

  #arm(): void {
    // Timers take whole milliseconds: round up, so a wake-up never comes before the step's end.
    const delay = Math.max(0, Math.ceil(this.#stepEnd - this.#now()));
    this.#timer = setTimeout(this.#wake, delay);
  }

  /** Ends every step that is due, then tells each touched request once. */
  readonly #wake = (): void => {
    this.#timer = undefined;
    const now = this.#now();
    const touched: Sequence[] = [];
    while (this.#stepEnd <= now && this.#runningCount > 0) {
      const end = this.#stepEnd;
      for (const sequence of this.#inStep) this.#advance(sequence, now, touched);
      this.#admitWaiting(end);
      if (this.#runningCount === 0) break;
      this.#startStep(end);
    }
    if (this.#runningCount === 0) this.#stop();
    else if (!this.#closed) this.#arm();
    for (const sequence of touched) {
      sequence.notify = false;
      if (sequence.state === 'cancelled') continue;
      sequence.listener.onTokens(sequence.decoded);
      if (sequence.state === 'done') sequence.listener.onDone();
    }
  };

  /** The end of a step for one sequence in it: a prompt chunk done, and maybe a token. */
  #advance(sequence: Sequence, now: number, touched: Sequence[]): void {
    if (sequence.state !== 'running') return;
    if (!sequence.prefilled) {
      sequence.prefillLeft -= sequence.chunk;
      if (sequence.prefillLeft > 0) return;
      sequence.prefilled = true;
    }
    if (sequence.decoded < sequence.outputTokens) {
      sequence.decoded++;
      if (sequence.decoded === 1) sequence.firstTokenAt = now;
      sequence.lastTokenAt = now;
    }
    if (sequence.decoded >= sequence.outputTokens) {
      sequence.state = 'done';
      this.#runningCount--;
      this.#counts.completed++;
    }
    if (!sequence.notify) {
      sequence.notify = true;
      touched.push(sequence);
    }
  }
}

function performanceNow(): number {
  return performance.now();
}
