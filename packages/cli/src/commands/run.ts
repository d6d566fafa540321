/**
 * `volley run <input.jsonl> --output <results.jsonl>`: an OpenAI Batch JSONL file through the
 * runtime, streaming from reader to writer with bounded memory.
 *
 *   reader --line--> parseBatchLine --request--> volley.request (window of in-flight lines)
 *                                                     |
 *   results file <-- one record per custom_id <-------+--> errors file (or the output, `error` set)
 *
 * The reader is pulled only while the window has room, so a million-line file never sits in
 * memory. Lines stopped by an auth or quota failure are not written at all: they stay pending.
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createHistogram } from 'node:perf_hooks';
import type { CallResult, EndpointOptions, RuntimeStats, Volley, VolleyMode } from 'volley';
import { createVolley, ErrorCode, isVolleyError } from 'volley';
import { CliError, ExitCode } from '../exit-codes.js';
import {
  createDuplicateTracker,
  duplicateCustomIdIssue,
  parseBatchLine,
} from '../jsonl/batch-line.js';
import type { InputIssue } from '../jsonl/reader.js';
import { inspectInputFile, readJsonlLines } from '../jsonl/reader.js';
import type { JsonlWriter } from '../jsonl/writer.js';
import { assertDistinctPaths, openJsonlWriter } from '../jsonl/writer.js';
import type { ProgressMode, ProgressReporter, RunSummary } from '../progress.js';
import { createProgressReporter } from '../progress.js';

export interface RunCommandOptions {
  input: string;
  output: string;
  errors?: string;
  baseUrl?: string[];
  model?: string;
  concurrency?: number;
  rpm?: number;
  tpm?: number;
  mode?: VolleyMode;
  threads?: number;
  maxRetries?: number;
  timeoutMs?: number;
  progress: ProgressMode;
  json: boolean;
  overwrite: boolean;
  maxLineBytes?: number;
  /** How long the first Ctrl-C waits for in-flight lines before giving up on them. */
  graceMs: number;
  /** Allow plain http to hosts other than loopback. */
  allowInsecureHttp?: boolean;
}

/** Lines in flight per unit of concurrency: enough to keep every slot busy while results drain. */
const WINDOW_PER_SLOT = 2;
const PROGRESS_UPDATE_MS = 200;

export async function runCommand(options: RunCommandOptions): Promise<number> {
  const fileIssue = options.input === '-' ? undefined : await inspectInputFile(options.input);
  if (fileIssue !== undefined)
    throw new CliError(`${options.input}: ${fileIssue.message}`, ExitCode.USAGE);
  await assertDistinctPaths(
    options.input,
    options.errors === undefined ? [options.output] : [options.output, options.errors],
  );
  const total = options.input === '-' ? undefined : await countLines(options.input);

  const volley = await createVolley({
    ...(options.baseUrl === undefined
      ? {}
      : { endpoints: options.baseUrl.map((baseUrl) => endpointFor(baseUrl, options)) }),
    ...(options.model === undefined ? {} : { model: options.model }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    // The progress display reports events to people; JSON logs only when asked for.
    ...(process.env.VOLLEY_LOG_LEVEL === undefined ? { logger: false } : {}),
  });
  const output = await openJsonlWriter(options.output, { overwrite: options.overwrite });
  const errors =
    options.errors === undefined
      ? output
      : await openJsonlWriter(options.errors, { overwrite: options.overwrite });
  const progress = createProgressReporter({ mode: options.progress });
  if (volley.simulator !== undefined)
    progress.log(`no endpoint configured: using the embedded simulator at ${volley.simulator.url}`);
  try {
    return await new BatchRun(volley, options, output, errors, progress, total).run();
  } finally {
    await output.close();
    if (errors !== output) await errors.close();
  }
}

function endpointFor(baseUrl: string, options: RunCommandOptions): EndpointOptions {
  const endpoint: EndpointOptions = { baseUrl };
  if (options.rpm !== undefined) endpoint.rpm = options.rpm;
  if (options.tpm !== undefined) endpoint.tpm = options.tpm;
  if (options.allowInsecureHttp === true) endpoint.allowInsecureHttp = true;
  return endpoint;
}

class BatchRun {
  readonly #startedAt = performance.now();
  readonly #latency = createHistogram();
  readonly #byError: Record<string, number> = {};
  readonly #ids = createDuplicateTracker();
  readonly #warned = new Set<string>();
  #succeeded = 0;
  #failed = 0;
  #pending = 0;
  #skipped = 0;
  #inWindow = 0;
  #slotFreed: (() => void) | undefined;
  #stopReason: string | undefined;
  #interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  #writeError: Error | undefined;
  readonly #abort = new AbortController();

  readonly volley: Volley;
  readonly options: RunCommandOptions;
  readonly output: JsonlWriter;
  readonly errors: JsonlWriter;
  readonly progress: ProgressReporter;
  readonly total: number | undefined;

  constructor(
    volley: Volley,
    options: RunCommandOptions,
    output: JsonlWriter,
    errors: JsonlWriter,
    progress: ProgressReporter,
    total: number | undefined,
  ) {
    this.volley = volley;
    this.options = options;
    this.output = output;
    this.errors = errors;
    this.progress = progress;
    this.total = total;
  }

  async run(): Promise<number> {
    const window = (this.options.concurrency ?? 64) * WINDOW_PER_SLOT;
    const ticker = setInterval(() => this.progress.update(this.#snapshot()), PROGRESS_UPDATE_MS);
    const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => this.#onSignal(signal);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    this.volley.on('endpointStopped', ({ endpoint, error }) => {
      this.#stopReason ??= `${this.volley.endpoints[endpoint]}: ${error.message}`;
      this.progress.log(`endpoint ${endpoint} stopped: ${error.message}`);
    });
    this.volley.on('workerCrash', ({ restarts }) => {
      this.progress.log(
        `a worker thread crashed (${restarts} so far); its requests were re-dispatched`,
      );
    });
    this.volley.on('error', (error) => this.progress.log(`giving up: ${error.message}`));
    try {
      await this.#feed(window);
      while (this.#inWindow > 0) await this.#nextSlot();
      await this.volley.close();
    } finally {
      clearInterval(ticker);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (this.#writeError !== undefined) throw this.#writeError;
    return this.#finish();
  }

  async #feed(window: number): Promise<void> {
    const defaults = this.options.model === undefined ? {} : { model: this.options.model };
    const lines = readJsonlLines(this.options.input, {
      signal: this.#abort.signal,
      ...(this.options.maxLineBytes === undefined
        ? {}
        : { maxLineBytes: this.options.maxLineBytes }),
    });
    try {
      for await (const line of lines) {
        if (this.#stopReason !== undefined) {
          // No endpoint can take work: the rest of the file stays pending, counted but unsent.
          this.#pending++;
          continue;
        }
        if ('issue' in line) {
          await this.#reject(line.issue);
        } else {
          const parsed = parseBatchLine(line, defaults);
          if (parsed.ok && parsed.warnings !== undefined) this.#warn(parsed.warnings);
          if (!parsed.ok) await this.#reject(parsed.issue);
          else if (!this.#ids.add(parsed.request.customId))
            await this.#reject(duplicateCustomIdIssue(line, parsed.request.customId));
          else this.#send(parsed.request.customId, parsed.request.url, parsed.request.body);
        }
        while (this.#inWindow >= window) await this.#nextSlot();
        if (this.#shouldStop()) break;
      }
    } catch (error) {
      if (!this.#abort.signal.aborted) throw error;
    }
  }

  /** Accepted lines with something odd (unknown fields): each kind is shown once, not per line. */
  #warn(warnings: InputIssue[]): void {
    for (const warning of warnings) {
      if (this.#warned.has(warning.code)) continue;
      this.#warned.add(warning.code);
      this.progress.log(`warning: ${warning.message} (${warning.code}; further ones not shown)`);
    }
  }

  #shouldStop(): boolean {
    return this.#interrupted !== undefined || this.#writeError !== undefined;
  }

  #send(customId: string, url: string, body: Record<string, unknown>): void {
    this.#inWindow++;
    this.volley
      .request({ path: url, body, raw: true })
      .then(
        (result) =>
          this.#write(this.output, successRecord(customId, result)).then(() => {
            this.#succeeded++;
            this.#latency.record(Math.max(1, Math.round(result.latencyMs)));
          }),
        (error: unknown) => this.#onCallFailed(customId, error),
      )
      .catch((error: unknown) => {
        this.#writeError ??= toError(error);
      })
      .finally(() => {
        this.#inWindow--;
        this.#slotFreed?.();
      });
  }

  async #onCallFailed(customId: string, error: unknown): Promise<void> {
    const code = isVolleyError(error) ? error.code : 'VOLLEY_ERR_INTERNAL';
    // Stopped endpoints and an interrupted run leave lines pending: no record, resumable.
    if (
      code === ErrorCode.NO_ENDPOINT ||
      (code === ErrorCode.ABORTED && this.#interrupted !== undefined)
    ) {
      this.#pending++;
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    const status = isVolleyError(error) ? (error.status ?? firstStatus(error)) : undefined;
    await this.#write(this.errors, errorRecord(customId, code, message, status));
    this.#failed++;
    this.#byError[code] = (this.#byError[code] ?? 0) + 1;
  }

  async #reject(issue: InputIssue): Promise<void> {
    const customId = issue.customId ?? `line-${issue.lineNo}`;
    await this.#write(
      this.errors,
      errorRecord(customId, issue.code, issue.message, undefined, issue.lineNo),
    );
    this.#skipped++;
    this.#byError[issue.code] = (this.#byError[issue.code] ?? 0) + 1;
  }

  async #write(writer: JsonlWriter, line: string): Promise<void> {
    try {
      await writer.write(line);
    } catch (error) {
      this.#writeError ??= toError(error);
      this.#abort.abort();
      throw error;
    }
  }

  #nextSlot(): Promise<void> {
    return new Promise((resolve) => {
      this.#slotFreed = resolve;
    });
  }

  #onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
    if (this.#interrupted !== undefined) {
      this.progress.log(`${signal} again: aborting in-flight requests`);
      void this.volley.destroy();
      return;
    }
    this.#interrupted = signal;
    this.progress.log(
      `${signal}: no new lines; draining ${this.#inWindow} in flight (again to abort)`,
    );
    this.#abort.abort();
    setTimeout(() => void this.volley.destroy(), this.options.graceMs).unref();
  }

  #snapshot() {
    const stats: RuntimeStats = this.volley.stats();
    return {
      ...(this.total === undefined ? {} : { total: this.total }),
      done: this.#succeeded + this.#failed + this.#skipped,
      succeeded: this.#succeeded,
      failed: this.#failed + this.#skipped,
      inFlight: stats.inFlight,
      queued: stats.queued,
      retries: stats.retries,
      rateLimited: stats.waitingOnRateLimit,
      promptTokens: stats.promptTokens,
      completionTokens: stats.completionTokens,
      elapsedMs: performance.now() - this.#startedAt,
    };
  }

  #finish(): number {
    const stats = this.volley.stats();
    const summary: RunSummary = {
      total: this.#succeeded + this.#failed + this.#skipped + this.#pending,
      succeeded: this.#succeeded,
      failed: this.#failed,
      skipped: this.#skipped,
      retries: stats.retries,
      extraBilledCalls: stats.extraBilledCalls,
      promptTokens: stats.promptTokens,
      completionTokens: stats.completionTokens,
      wallMs: performance.now() - this.#startedAt,
      byError: this.#byError,
      byEndpoint: Object.fromEntries(
        stats.byEndpoint.map((endpoint, i) => [
          this.volley.endpoints[i] ?? String(i),
          { succeeded: endpoint.succeeded, failed: endpoint.failed },
        ]),
      ),
      outputPath: this.options.output,
      ...(this.options.errors === undefined ? {} : { errorsPath: this.options.errors }),
    };
    if (this.#succeeded > 0) {
      const ms = (p: number): number => this.#latency.percentile(p);
      summary.latencyMs = { p50: ms(50), p90: ms(90), p99: ms(99), max: this.#latency.max };
    }
    this.progress.finish(summary);
    if (this.options.json)
      process.stdout.write(
        `${JSON.stringify({ version: 1, pending: this.#pending, ...summary })}\n`,
      );
    if (this.#interrupted === 'SIGINT') return ExitCode.INTERRUPTED;
    if (this.#interrupted === 'SIGTERM') return ExitCode.TERMINATED;
    if (this.#pending > 0) {
      this.progress.log(
        `stopped: ${this.#stopReason ?? 'no endpoint available'}; ${this.#pending} lines pending`,
      );
      return ExitCode.STOPPED;
    }
    return this.#failed + this.#skipped > 0 ? ExitCode.SOME_FAILED : ExitCode.OK;
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function firstStatus(error: Error): number | undefined {
  let cause: unknown = error.cause;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    const status = (cause as { status?: unknown }).status;
    if (typeof status === 'number') return status;
    cause = cause.cause;
  }
  return undefined;
}

/** `batch_req_` plus 24 hex characters, the shape of OpenAI's batch request ids. */
function batchRequestId(): string {
  return `batch_req_${randomBytes(12).toString('hex')}`;
}

/**
 * One output line. The body is the server's JSON text embedded as is (validated in the worker),
 * so the main thread never re-parses or re-serialises a result. A pretty-printed body would break
 * the one-record-per-line framing, so only then is it re-serialised.
 */
export function successRecord(customId: string, result: CallResult): string {
  let body = result.bodyText ?? JSON.stringify(result.body ?? null);
  if (body.includes('\n') || body.includes('\r')) body = JSON.stringify(JSON.parse(body));
  return `{"id":${JSON.stringify(batchRequestId())},"custom_id":${JSON.stringify(customId)},"response":{"status_code":${result.status},"request_id":${JSON.stringify(result.requestId)},"body":${body}},"error":null}`;
}

export function errorRecord(
  customId: string,
  code: string,
  message: string,
  status?: number,
  line?: number,
): string {
  return JSON.stringify({
    id: batchRequestId(),
    custom_id: customId,
    response: status === undefined ? null : { status_code: status, request_id: '', body: null },
    error: { code, message, ...(line === undefined ? {} : { line }) },
  });
}

/** Physical lines in a file (a last line without `\n` counts), for the progress total. */
async function countLines(path: string): Promise<number> {
  let lines = 0;
  let last = 10;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    last = chunk[chunk.length - 1] ?? last;
  }
  return last === 10 ? lines : lines + 1;
}
