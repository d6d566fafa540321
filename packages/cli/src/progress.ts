/**
 * The progress line: LLM-specific gauges (in flight, waiting on the rate limiter, tokens/s in and
 * out) that no generic progress-bar library shows. It writes to stderr by default, never stdout:
 * stdout carries data only.
 *
 *   update(snapshot) ──► latest snapshot + sparse rate samples (cheap, no I/O)
 *                               │
 *   unref()ed timer ────────────┴──► render: tty (log-update), plain line, or JSON event
 *
 * Rendering on a timer instead of on every update keeps the hot path at one assignment, and the
 * timer is unref()ed so a forgotten reporter never keeps the process alive.
 */

import { createLogUpdate } from 'log-update';
import type { ClusterSplit } from './run/cluster-batch.js';
import { escapeForTerminal } from './text.js';

/** How progress is shown. `auto` picks `tty` on an interactive terminal, else `plain`. */
export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'none';

/** The counters of a run at one moment, as the dispatcher sees them. */
export interface ProgressSnapshot {
  /** Number of requests in the run, when known (unknown while the input is still being read). */
  total?: number;
  done: number;
  succeeded: number;
  failed: number;
  inFlight: number;
  queued: number;
  retries: number;
  /** Requests waiting on the rate limiter right now. */
  rateLimited: number;
  promptTokens: number;
  completionTokens: number;
  elapsedMs: number;
  /** Estimated spend so far in USD, when prices are configured. */
  costUsd?: number;
  /**
   * `--concurrency auto`: each endpoint's current limit, in endpoint order (`null` for an endpoint
   * without one).
   */
  concurrencyLimits?: Array<number | null>;
}

/** The final figures of a run, printed once by {@link ProgressReporter.finish}. */
export interface RunSummary {
  /** How the run ended: `finished`, `finished-with-errors`, `interrupted`, `stopped`, `write-failed`. */
  status?: string;
  /** Input lines (not blank), including those finished by an earlier run. */
  total: number;
  succeeded: number;
  /** Requests that failed (the errors file). */
  failed: number;
  /** Bad input lines (the errors file). */
  skipped: number;
  /** Lines neither finished nor failed: `--resume` sends them. */
  pending?: number;
  /** Lines an earlier run finished (resume). */
  alreadyDone?: number;
  /** Of those, lines that failed for good (their records stay in the errors file). */
  alreadyFailed?: number;
  /** Estimated spend in USD, when prices are configured. */
  costUsd?: number;
  retries: number;
  /** Calls that may have been billed twice (ambiguous failures that were retried). */
  extraBilledCalls: number;
  /** `--samples`: requests sent for the lines (samples, early-stopped ones, judge calls). */
  sampleCalls?: number;
  promptTokens: number;
  completionTokens: number;
  wallMs: number;
  latencyMs?: { p50: number; p90: number; p99: number; max: number };
  byError: Record<string, number>;
  /** The most frequent failures by message, most frequent first (see run/error-tally.ts). */
  topErrors?: TopError[];
  /** `concurrencyLimit`: the endpoint's adaptive limit at the end (`--concurrency auto`). */
  byEndpoint?: Record<string, { succeeded: number; failed: number; concurrencyLimit?: number }>;
  outputPath?: string;
  errorsPath?: string;
  retryPath?: string;
  /** The command line that continues the run, when lines are left pending. */
  resumeCommand?: string;
  /** `--cluster`: the batch's split per worker (run/cluster-batch.ts). */
  cluster?: ClusterSplit;
}

/** One kind of failure: its code, HTTP status and message, how often, and one line it hit. */
export interface TopError {
  code: string;
  status?: number;
  /** Scrubbed of secrets, then cut to about 120 characters. */
  message: string;
  count: number;
  /** The `custom_id` of one line that failed so. */
  exampleId: string;
}

/** The subset of a terminal stream the reporter uses; `process.stderr` satisfies it. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

/** Options of {@link createProgressReporter}. */
export interface ProgressReporterOptions {
  mode: ProgressMode;
  /** Where progress goes. Default `process.stderr`. */
  stream?: ProgressStream;
  /** Render interval. Default 200 ms on a TTY, 5000 ms for `plain` and `json`. */
  intervalMs?: number;
  /** A short name shown at the start of each line (escaped). Default `volley`. */
  label?: string;
  /**
   * `--quiet`: with mode `none`, still print the summary at the end (vitest `--silent` keeps
   * its summary too). Default false: `--progress none` prints nothing.
   */
  keepSummary?: boolean;
}

/** A live progress display; see {@link createProgressReporter}. */
export interface ProgressReporter {
  /** The mode in effect after resolving `auto`. */
  readonly mode: Exclude<ProgressMode, 'auto'>;
  /** Records the latest counters. Cheap: no I/O; the timer renders. */
  update(snapshot: ProgressSnapshot): void;
  /** Prints one line (escaped) above the live line on a TTY, or as its own line/event otherwise. */
  log(message: string): void;
  /** Stops the live line and prints the summary. Idempotent; later updates are ignored. */
  finish(summary: RunSummary): void;
}

/** Width of the sliding window over which the "now" rates and the ETA are computed. */
export const RATE_WINDOW_MS = 5_000;
/** Rate samples closer together than this are coalesced: at most ~25 samples per window. */
const SAMPLE_SPACING_MS = 200;
/** A window shorter than this gives noisy rates; the overall rate is used instead. */
const MIN_WINDOW_MS = 1_000;

const DEFAULT_TTY_INTERVAL_MS = 200;
const DEFAULT_PLAIN_INTERVAL_MS = 5_000;
const EM_DASH = '\u2014';
const JSON_EVENT_VERSION = 1;

/**
 * Formats a remaining time: `45s`, `3m05s`, `2h03m`, `1d04h`; `—` when unknown (undefined, NaN,
 * infinite or negative).
 *
 * @example
 * formatEta(185_000) // '3m05s'
 */
export function formatEta(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return EM_DASH;
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 60) return `${totalSeconds}s`;
  const totalMinutes = Math.floor(totalSeconds / 60);
  if (totalMinutes < 60) return `${totalMinutes}m${pad2(totalSeconds % 60)}s`;
  const totalHours = Math.floor(totalMinutes / 60);
  if (totalHours < 24) return `${totalHours}h${pad2(totalMinutes % 60)}m`;
  return `${Math.floor(totalHours / 24)}d${pad2(totalHours % 24)}h`;
}

/** Formats a duration for the summary: `850 ms`, `12.3 s`, or the {@link formatEta} form. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return EM_DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatEta(ms);
}

/** Rates derived from snapshots; `undefined` where there is not enough data yet. */
export interface ProgressRates {
  /** Requests finished per second over the last {@link RATE_WINDOW_MS}. */
  reqPerSec: number | undefined;
  reqPerSecOverall: number | undefined;
  promptTokensPerSec: number | undefined;
  promptTokensPerSecOverall: number | undefined;
  completionTokensPerSec: number | undefined;
  completionTokensPerSecOverall: number | undefined;
  /** Time to finish at the windowed rate; undefined when the total or the rate is unknown. */
  etaMs: number | undefined;
  /** 0..100, when the total is known. */
  percent: number | undefined;
}

interface RateSample {
  t: number;
  done: number;
  promptTokens: number;
  completionTokens: number;
}

/**
 * Sliding-window rate tracker. Pure: time comes from the snapshots' `elapsedMs`, so tests feed
 * snapshots instead of sleeping.
 *
 * @example
 * const window = createRateWindow();
 * window.add(snapshotAt1s); window.add(snapshotAt6s);
 * window.rates(snapshotAt6s).reqPerSec;
 */
export function createRateWindow(windowMs: number = RATE_WINDOW_MS): {
  add(snapshot: ProgressSnapshot): void;
  rates(snapshot: ProgressSnapshot): ProgressRates;
} {
  const samples: RateSample[] = [];
  return {
    add(s) {
      const last = samples[samples.length - 1];
      if (last !== undefined && s.elapsedMs - last.t < SAMPLE_SPACING_MS) return;
      samples.push({
        t: s.elapsedMs,
        done: s.done,
        promptTokens: s.promptTokens,
        completionTokens: s.completionTokens,
      });
      // Keep one sample older than the window so the window can span its full width.
      while (samples.length > 2 && (samples[1]?.t ?? 0) <= s.elapsedMs - windowMs) samples.shift();
    },
    rates(s) {
      const seconds = s.elapsedMs / 1000;
      const overall = (n: number): number | undefined => (seconds > 0 ? n / seconds : undefined);
      // The oldest sample still inside (or just past) the window is the base of the window.
      let base: RateSample | undefined;
      for (const sample of samples) {
        if (sample.t >= s.elapsedMs - windowMs) {
          base = sample;
          break;
        }
        base = sample;
      }
      const span = base === undefined ? 0 : s.elapsedMs - base.t;
      const windowed = (n: number, baseN: number): number | undefined =>
        span >= MIN_WINDOW_MS ? (n - baseN) / (span / 1000) : overall(n);
      const reqPerSec = windowed(s.done, base?.done ?? 0);
      const remaining = s.total === undefined ? undefined : Math.max(0, s.total - s.done);
      let etaMs: number | undefined;
      if (remaining === 0) etaMs = 0;
      else if (remaining !== undefined && reqPerSec !== undefined && reqPerSec > 0) {
        etaMs = (remaining / reqPerSec) * 1000;
      }
      return {
        reqPerSec,
        reqPerSecOverall: overall(s.done),
        promptTokensPerSec: windowed(s.promptTokens, base?.promptTokens ?? 0),
        promptTokensPerSecOverall: overall(s.promptTokens),
        completionTokensPerSec: windowed(s.completionTokens, base?.completionTokens ?? 0),
        completionTokensPerSecOverall: overall(s.completionTokens),
        etaMs,
        percent:
          s.total === undefined || s.total <= 0
            ? undefined
            : Math.min(100, (s.done / s.total) * 100),
      };
    },
  };
}

/**
 * Creates a progress reporter. Choose once at start-up from `--progress`; the reporter never
 * switches mode.
 *
 * @example
 * const progress = createProgressReporter({ mode: 'auto' });
 * progress.update(snapshot);          // as often as you like
 * progress.log('line 12 skipped: ...');
 * progress.finish(summary);
 */
export function createProgressReporter(options: ProgressReporterOptions): ProgressReporter {
  const stream: ProgressStream = options.stream ?? process.stderr;
  const mode = resolveMode(options.mode, stream);
  const interval = options.intervalMs ?? defaultInterval(mode);
  if (!Number.isFinite(interval) || interval <= 0) {
    throw new RangeError(`progress intervalMs must be a positive number, got ${interval}`);
  }
  const label = escapeForTerminal(options.label ?? 'volley');
  const color = mode === 'tty' && process.env.NO_COLOR === undefined;
  const window = createRateWindow();

  let latest: ProgressSnapshot | undefined;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  // log-update hides the cursor on process.stderr, whatever stream it draws on; only let it do
  // that when it is drawing on process.stderr itself.
  const live =
    mode === 'tty'
      ? createLogUpdate(sizedStream(stream) as unknown as NodeJS.WritableStream, {
          showCursor: stream !== process.stderr,
        })
      : undefined;

  const render = (): void => {
    if (latest === undefined) return;
    const rates = window.rates(latest);
    switch (mode) {
      case 'tty':
        live?.(
          formatProgressLine(latest, rates, {
            label,
            color,
            columns: terminalColumns(stream),
            bar: true,
          }),
        );
        break;
      case 'plain':
        stream.write(
          `${formatProgressLine(latest, rates, { label, color: false, columns: Infinity })}\n`,
        );
        break;
      case 'json':
        stream.write(`${JSON.stringify(progressEvent(latest, rates, options.label))}\n`);
        break;
      case 'none':
        break;
    }
  };

  return {
    mode,
    update(snapshot) {
      if (finished || mode === 'none') return;
      latest = snapshot;
      window.add(snapshot);
      if (timer === undefined) {
        timer = setInterval(render, interval);
        timer.unref();
      }
    },
    log(message) {
      const line = escapeForTerminal(message);
      switch (mode) {
        case 'tty':
          if (live === undefined || finished) {
            stream.write(`${line}\n`);
          } else {
            live.persist(line);
            render();
          }
          break;
        case 'json':
          stream.write(
            `${JSON.stringify({ type: 'log', version: JSON_EVENT_VERSION, message: line })}\n`,
          );
          break;
        // `none` silences progress, not messages: a skipped input line must still be reported.
        case 'plain':
        case 'none':
          stream.write(`${line}\n`);
          break;
      }
    },
    finish(summary) {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      switch (mode) {
        case 'tty':
          live?.clear();
          live?.done();
          stream.write(formatSummary(summary, { label, color }));
          break;
        case 'plain':
          stream.write(formatSummary(summary, { label, color: false }));
          break;
        case 'json':
          stream.write(
            `${JSON.stringify({ type: 'summary', version: JSON_EVENT_VERSION, ...summaryForJson(summary) })}\n`,
          );
          break;
        case 'none':
          if (options.keepSummary === true) {
            stream.write(formatSummary(summary, { label, color: false }));
          }
          break;
      }
    },
  };
}

/**
 * A terminal may report a size of 0 x 0: a pseudo-terminal nobody set a window size on
 * (`script`, some CI runners, Emacs). log-update then draws nothing at all (0 rows), and the line
 * would be cut to nothing; assume 80 x 24 instead.
 */
function terminalColumns(stream: ProgressStream): number {
  return stream.columns !== undefined && stream.columns > 0 ? stream.columns : 80;
}

function sizedStream(stream: ProgressStream): ProgressStream {
  return {
    write: (chunk: string) => stream.write(chunk),
    isTTY: stream.isTTY === true,
    get columns() {
      return terminalColumns(stream);
    },
    get rows() {
      return stream.rows !== undefined && stream.rows > 0 ? stream.rows : 24;
    },
  };
}

function resolveMode(mode: ProgressMode, stream: ProgressStream): Exclude<ProgressMode, 'auto'> {
  if (mode !== 'auto') return mode;
  // log-update writes cursor escapes even without a TTY, and `TERM=dumb` terminals (Emacs shell,
  // some CI consoles) print them raw: both get plain lines.
  return stream.isTTY === true && process.env.TERM !== 'dumb' ? 'tty' : 'plain';
}

function defaultInterval(mode: Exclude<ProgressMode, 'auto'>): number {
  return mode === 'tty' ? DEFAULT_TTY_INTERVAL_MS : DEFAULT_PLAIN_INTERVAL_MS;
}

function progressEvent(
  s: ProgressSnapshot,
  r: ProgressRates,
  label: string | undefined,
): Record<string, unknown> {
  // JSON.stringify drops undefined fields; unknown rates become null so the shape is stable.
  const n = (v: number | undefined): number | null => (v === undefined ? null : roundRate(v));
  return {
    type: 'progress',
    version: JSON_EVENT_VERSION,
    ...(label === undefined ? {} : { label }),
    elapsedMs: Math.round(s.elapsedMs),
    total: s.total ?? null,
    done: s.done,
    succeeded: s.succeeded,
    failed: s.failed,
    inFlight: s.inFlight,
    queued: s.queued,
    retries: s.retries,
    rateLimited: s.rateLimited,
    promptTokens: s.promptTokens,
    completionTokens: s.completionTokens,
    percent: n(r.percent),
    reqPerSec: n(r.reqPerSec),
    reqPerSecOverall: n(r.reqPerSecOverall),
    promptTokensPerSec: n(r.promptTokensPerSec),
    promptTokensPerSecOverall: n(r.promptTokensPerSecOverall),
    completionTokensPerSec: n(r.completionTokensPerSec),
    completionTokensPerSecOverall: n(r.completionTokensPerSecOverall),
    etaMs: r.etaMs === undefined ? null : Math.round(r.etaMs),
    costUsd: s.costUsd === undefined ? null : roundUsd(s.costUsd),
    ...(s.concurrencyLimits === undefined ? {} : { concurrencyLimits: s.concurrencyLimits }),
  };
}

/** Rates and percentages in JSON: 0.1 is all a reader can use (not `6256.318840579711`). */
function roundRate(v: number): number {
  return Math.round(v * 10) / 10;
}

/** Spend in JSON: to the micro-dollar. */
function roundUsd(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/**
 * A summary as `--json` and `--progress json` print it: times in whole milliseconds and spend to
 * the micro-dollar, so no 15-digit floats reach a script or a log.
 *
 * @example
 * JSON.stringify({ version: 1, exitCode, ...summaryForJson(summary) })
 */
export function summaryForJson<T extends RunSummary>(summary: T): T {
  const l = summary.latencyMs;
  return {
    ...summary,
    wallMs: Math.round(summary.wallMs),
    ...(l === undefined
      ? {}
      : {
          latencyMs: {
            p50: Math.round(l.p50),
            p90: Math.round(l.p90),
            p99: Math.round(l.p99),
            max: Math.round(l.max),
          },
        }),
    ...(summary.costUsd === undefined ? {} : { costUsd: roundUsd(summary.costUsd) }),
  };
}

/** Options of {@link formatProgressLine}. */
export interface ProgressLineOptions {
  /** Already escaped. */
  label: string;
  color: boolean;
  /** Counters that do not fit are dropped, least useful first; the line never wraps. */
  columns: number;
  /** Draw a bar (a live terminal line; plain log lines leave it out). Default false. */
  bar?: boolean;
}

/** Narrowest and widest bar: 10 cells at 80 columns, 16 at 160. */
const BAR_MIN = 10;
const BAR_MAX = 30;
const BAR_EIGHTHS = ['', '\u258f', '\u258e', '\u258d', '\u258c', '\u258b', '\u258a', '\u2589'];
const SEPARATOR = ' \u2502 ';

/**
 * Formats one progress line, tqdm's head then Volley's counters:
 *
 *   volley 45.0% |████▌     | 90,000/200,000 [00:14<00:17, 6,300 req/s] │ errors 0 │ retries 17 │ in flight 47 (+38 queued) │ …
 *
 * The head (percent, bar, counts, elapsed<remaining, rate) always shows; its bar shrinks first on
 * a narrow terminal. The counters follow in order of usefulness (errors, cost, retries, in flight
 * and queued, rate-limit waits, token rates, average rate), and the first that does not fit
 * ends the line: the less useful ones go first, and the line never wraps (a wrapped live line
 * breaks log-update's erase-and-redraw). `in flight` is on the wire; `queued` is accepted but not
 * yet sent (waiting for a concurrency slot): separate requests, hence `+`.
 *
 * @example
 * formatProgressLine(snapshot, rates, { label: 'volley', color: false, columns: 80, bar: true })
 * // 'volley 12.3% |█▎        | 1,234/10,000 [00:30<03:32, 41.2 req/s] │ errors 5 │ retries 2'
 */
export function formatProgressLine(
  s: ProgressSnapshot,
  r: ProgressRates,
  options: ProgressLineOptions,
): string {
  const paint = painter(options.color);
  const limit = options.columns - 1;
  const clock = `[${formatClock(s.elapsedMs)}${s.total === undefined ? '' : `<${r.etaMs === undefined ? '?' : formatClock(r.etaMs)}`}, ${formatRate(r.reqPerSec)} req/s]`;
  const counts =
    s.total === undefined
      ? `${formatInt(s.done)} done`
      : `${formatInt(s.done)}/${formatInt(s.total)}`;
  const before = `${options.label}${r.percent === undefined ? '' : ` ${formatPercent(r.percent)}`}`;
  const after = `${counts} ${clock}`;
  let headWidth = before.length + 1 + after.length;
  let bar = '';
  if (options.bar === true && r.percent !== undefined) {
    // The bar takes what the head leaves, within its bounds; on a very narrow terminal, none.
    const room = limit - headWidth - 3;
    const cells = Math.min(BAR_MAX, Math.max(BAR_MIN, Math.floor(options.columns / 10)), room);
    if (cells >= 4) {
      bar = `|${drawBar(r.percent / 100, cells)}| `;
      headWidth += cells + 3;
    }
  }
  const head = `${paint.bold(options.label)}${before.slice(options.label.length)} ${bar}${after}`;

  const segments: Array<{ text: string; width: number }> = [];
  const add = (plain: string, styled: string = plain): void => {
    segments.push({ text: styled, width: plain.length });
  };
  const errors = `errors ${formatInt(s.failed)}`;
  add(errors, s.failed > 0 ? paint.red(errors) : errors);
  // Spend, when prices are given, is what the user asked to watch. Retries come next: with an
  // endpoint that never answers they were the only sign of trouble.
  if (s.costUsd !== undefined) add(`cost ${formatUsd(s.costUsd)}`);
  const retries = `retries ${formatInt(s.retries)}`;
  add(retries, s.retries > 0 ? paint.yellow(retries) : retries);
  add(
    `in flight ${formatInt(s.inFlight)}${s.queued > 0 ? ` (+${formatInt(s.queued)} queued)` : ''}`,
  );
  // `--concurrency auto`: where each endpoint's limit is now, the figure the user cannot guess.
  if (s.concurrencyLimits !== undefined) {
    const limits = s.concurrencyLimits.map((l) => (l === null ? '-' : formatInt(l)));
    add(`${limits.length === 1 ? 'limit' : 'limits'} ${limits.join('/')}`);
  }
  // Only while it holds something back: a constant "0" would push the token rates off the line.
  const limiter = `waiting on limiter ${formatInt(s.rateLimited)}`;
  if (s.rateLimited > 0) add(limiter, paint.yellow(limiter));
  add(
    `tok/s in ${formatCompact(r.promptTokensPerSec)} out ${formatCompact(r.completionTokensPerSec)}`,
  );
  add(`avg ${formatRate(r.reqPerSecOverall)} req/s`);

  let width = headWidth;
  const parts = [head];
  for (const segment of segments) {
    const extra = SEPARATOR.length + segment.width;
    if (width + extra > limit) break;
    parts.push(segment.text);
    width += extra;
  }
  return parts.join(options.color ? paint.dim(SEPARATOR) : SEPARATOR);
}

/** `cells` wide, filled to `fraction` in eighths of a cell. */
function drawBar(fraction: number, cells: number): string {
  const eighths = Math.round(Math.min(1, Math.max(0, fraction)) * cells * 8);
  const full = Math.floor(eighths / 8);
  const partial = BAR_EIGHTHS[eighths % 8] ?? '';
  return `${'\u2588'.repeat(full)}${partial}`.padEnd(cells, ' ');
}

/**
 * A clock for elapsed and remaining time, as tqdm shows them: `00:14`, `12:05`, `1:02:03`;
 * `?` when unknown.
 *
 * @example
 * formatClock(3_723_000) // '1:02:03'
 */
export function formatClock(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '?';
  const total = Math.round(ms / 1000);
  const hours = Math.floor(total / 3600);
  const mmss = `${pad2(Math.floor(total / 60) % 60)}:${pad2(total % 60)}`;
  return hours > 0 ? `${hours}:${mmss}` : mmss;
}

/** Options of {@link formatSummary}. */
export interface SummaryFormatOptions {
  /** Already escaped. */
  label: string;
  color: boolean;
}

/**
 * Formats the end-of-run block: aligned `key: value` lines, then errors by code and endpoints.
 * Paths, error codes and endpoint names are escaped: they can come from input or servers.
 */
export function formatSummary(summary: RunSummary, options: SummaryFormatOptions): string {
  const paint = painter(options.color);
  const rows: Array<[string, string]> = [];
  const seconds = summary.wallMs / 1000;
  if (summary.status !== undefined) rows.push(['status', summary.status]);
  rows.push(['total', formatInt(summary.total)]);
  if (summary.alreadyDone !== undefined && summary.alreadyDone > 0) {
    const failed = summary.alreadyFailed ?? 0;
    rows.push([
      'already done',
      `${formatInt(summary.alreadyDone)}${failed > 0 ? ` (${formatInt(failed)} of them failed)` : ''}`,
    ]);
  }
  rows.push([
    'succeeded',
    summary.succeeded > 0
      ? paint.green(formatInt(summary.succeeded))
      : formatInt(summary.succeeded),
  ]);
  rows.push([
    'failed',
    summary.failed > 0 ? paint.red(formatInt(summary.failed)) : formatInt(summary.failed),
  ]);
  rows.push(['skipped', formatInt(summary.skipped)]);
  if (summary.pending !== undefined && summary.pending > 0) {
    rows.push(['pending', paint.yellow(formatInt(summary.pending))]);
  }
  rows.push(['retries', formatInt(summary.retries)]);
  rows.push([
    'extra billed calls',
    summary.extraBilledCalls > 0
      ? paint.yellow(formatInt(summary.extraBilledCalls))
      : formatInt(summary.extraBilledCalls),
  ]);
  if (summary.sampleCalls !== undefined)
    rows.push(['sample calls', formatInt(summary.sampleCalls)]);
  rows.push(['prompt tokens', formatInt(summary.promptTokens)]);
  rows.push(['completion tokens', formatInt(summary.completionTokens)]);
  if (summary.costUsd !== undefined) rows.push(['estimated cost', formatUsd(summary.costUsd)]);
  rows.push(['wall time', formatDuration(summary.wallMs)]);
  if (seconds > 0) {
    const done = summary.succeeded + summary.failed;
    rows.push(['requests/s', formatRate(done / seconds)]);
    rows.push([
      'tokens/s',
      `in ${formatCompact(summary.promptTokens / seconds)}, out ${formatCompact(summary.completionTokens / seconds)}`,
    ]);
  }
  if (summary.latencyMs !== undefined) {
    const l = summary.latencyMs;
    rows.push([
      'latency',
      `p50 ${formatDuration(l.p50)}, p90 ${formatDuration(l.p90)}, p99 ${formatDuration(l.p99)}, max ${formatDuration(l.max)}`,
    ]);
  }
  if (summary.outputPath !== undefined) {
    rows.push(['results', escapeForTerminal(summary.outputPath)]);
  }
  if (summary.errorsPath !== undefined)
    rows.push(['errors', escapeForTerminal(summary.errorsPath)]);
  if (summary.retryPath !== undefined) rows.push(['retry', escapeForTerminal(summary.retryPath)]);

  const keyWidth = Math.max(...rows.map(([key]) => key.length));
  const lines = [paint.bold(`${options.label} summary`)];
  for (const [key, value] of rows) lines.push(`  ${`${key}:`.padEnd(keyWidth + 1)}  ${value}`);

  const errorEntries = Object.entries(summary.byError).sort((a, b) => b[1] - a[1]);
  if (errorEntries.length > 0) {
    lines.push('  by error code:');
    const width = Math.max(...errorEntries.map(([code]) => escapeForTerminal(code).length));
    for (const [code, count] of errorEntries) {
      lines.push(`    ${`${escapeForTerminal(code)}:`.padEnd(width + 1)}  ${formatInt(count)}`);
    }
  }
  const top = summary.topErrors ?? [];
  if (top.length > 0) {
    lines.push('  top errors:');
    const width = Math.max(...top.map((e) => formatInt(e.count).length));
    for (const e of top) {
      const kind = `${escapeForTerminal(e.code)}${e.status === undefined ? '' : ` ${e.status}`}`;
      lines.push(
        `    ${formatInt(e.count).padStart(width)}  ${kind}: ${escapeForTerminal(e.message)} (e.g. ${escapeForTerminal(e.exampleId)})`,
      );
    }
  }
  const endpoints = Object.entries(summary.byEndpoint ?? {});
  if (endpoints.length > 0) {
    lines.push('  by endpoint:');
    const width = Math.max(...endpoints.map(([name]) => escapeForTerminal(name).length));
    for (const [name, counts] of endpoints) {
      lines.push(
        `    ${`${escapeForTerminal(name)}:`.padEnd(width + 1)}  succeeded ${formatInt(counts.succeeded)}, failed ${formatInt(counts.failed)}${counts.concurrencyLimit === undefined ? '' : `, concurrency limit ${formatInt(counts.concurrencyLimit)}`}`,
      );
    }
  }
  if (summary.resumeCommand !== undefined) {
    lines.push(paint.yellow(`hint: to continue, run: ${escapeForTerminal(summary.resumeCommand)}`));
  }
  return `${lines.join('\n')}\n`;
}

function painter(enabled: boolean): Record<'bold' | 'dim' | 'red' | 'green' | 'yellow', Paint> {
  // Plain SGR codes: four colours do not justify a dependency; 22/39 reset only what was set.
  const sgr =
    (open: number, close: number): Paint =>
    (text) =>
      enabled ? `\u001b[${open}m${text}\u001b[${close}m` : text;
  return {
    bold: sgr(1, 22),
    dim: sgr(2, 22),
    red: sgr(31, 39),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
  };
}

type Paint = (text: string) => string;

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function formatInt(n: number): string {
  return intFormat.format(n);
}

function formatPercent(p: number | undefined): string {
  return p === undefined ? EM_DASH : `${p.toFixed(1)}%`;
}

function formatRate(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return EM_DASH;
  return n < 10 ? n.toFixed(1) : formatInt(n);
}

/** 950, 12.3k, 4.5M: token rates span six orders of magnitude. */
function formatCompact(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return EM_DASH;
  if (n < 1000) return n < 10 ? n.toFixed(1) : String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(n < 10_000_000 ? 1 : 0)}M`;
}

/** $0.0012, $1.23, $1,234: small spends keep their significant digits. */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return EM_DASH;
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  if (usd < 1000) return `$${usd.toFixed(2)}`;
  return `$${intFormat.format(usd)}`;
}

/** What `volley run --dry-run` found (its `--json` report). */
export interface DryRunReport {
  input: string;
  lines: number;
  blankLines: number;
  bytes: number;
  valid: number;
  invalid: number;
  duplicates: number;
  byCode: Record<string, number>;
  /** `--samples`: the flags, whose requests the estimates count. */
  sampling?: string;
  promptTokens: number;
  maxCompletionTokens: number;
  costUsd?: { prompt: number; upTo: number };
}

/** The `--dry-run` report for people (stderr). */
export function formatDryRun(report: DryRunReport): string {
  const rows: Array<[string, string]> = [
    ['input', escapeForTerminal(report.input)],
    ['lines', `${formatInt(report.lines)} (${formatInt(report.blankLines)} blank)`],
    ['size', `${(report.bytes / 1e6).toFixed(2)} MB`],
    ['valid', formatInt(report.valid)],
    ['invalid', formatInt(report.invalid)],
    ['duplicate custom_ids', formatInt(report.duplicates)],
    ...(report.sampling === undefined
      ? []
      : [['sampling', escapeForTerminal(report.sampling)] as [string, string]]),
    ['prompt tokens', `about ${formatInt(report.promptTokens)}`],
    ['completion tokens', `up to ${formatInt(report.maxCompletionTokens)}`],
  ];
  if (report.costUsd !== undefined) {
    rows.push([
      'estimated cost',
      `${formatUsd(report.costUsd.prompt)} input, up to ${formatUsd(report.costUsd.upTo)} in all`,
    ]);
  }
  const keyWidth = Math.max(...rows.map(([key]) => key.length));
  const lines = ['volley dry run (nothing sent)'];
  for (const [key, value] of rows) lines.push(`  ${`${key}:`.padEnd(keyWidth + 1)}  ${value}`);
  const codes = Object.entries(report.byCode).sort((a, b) => b[1] - a[1]);
  if (codes.length > 0) {
    lines.push('  by code:');
    for (const [code, count] of codes)
      lines.push(`    ${escapeForTerminal(code)}: ${formatInt(count)}`);
  }
  return `${lines.join('\n')}\n`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}
