/**
 * `volley bench`: load-test an OpenAI-compatible endpoint (the @volley/bench library behind
 * flags named like `vllm bench serve`'s), and `volley bench compare a.json b.json`.
 *
 *   1. check flags; pick the target (no --base-url: start the embedded simulator, and say so)
 *   2. build the prompts: synthetic (random), or a file read with `volley run`'s line parser
 *   3. start the shards; run one point, a sweep, an automatic sweep or an SLO search,
 *      `--repetitions` times; live progress on stderr
 *   4. write the JSON result (and CSV, HTML); print the summary (stderr) or the JSON (stdout)
 *
 * The API key comes from OPENAI_API_KEY and is registered as a secret: it never reaches a result,
 * a log line or an error message.
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type {
  BenchDocument,
  BenchProgress,
  BenchPrompt,
  DocumentMeta,
  FileRequest,
  LengthDistribution,
  Load,
  RunResult,
  Slos,
  VllmMetric,
} from '@volley/bench';
import {
  autoSweep,
  compareResults,
  createBenchmark,
  filePrompts,
  formatComparison,
  HEADLINE_FIELDS,
  headline,
  machineInfo,
  readDocument,
  renderHtmlReport,
  requestsCsv,
  runDocument,
  runsCsv,
  runsOf,
  searchSlo,
  sloSearchDocument,
  sweep,
  sweepDocument,
  syntheticPrompts,
} from '@volley/bench';
import { scrubSecrets } from '@volley/core';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { createLogUpdate } from 'log-update';
import { CliError, ExitCode } from '../exit-codes.js';
import { parseBatchLine } from '../jsonl/batch-line.js';
import { readJsonlLines } from '../jsonl/reader.js';
import type { ProgressMode } from '../progress.js';
import { formatEta } from '../progress.js';
import { escapeForTerminal } from '../text.js';

/** Options of {@link benchCommand}, from the flags. */
export interface BenchCommandOptions {
  /** One URL, or several replicas of one endpoint. */
  baseUrl?: string[];
  endpoint?: string;
  endpointType?: 'openai' | 'openai-chat';
  model?: string;
  /** Requests per run (default 1000; with only `durationMs`, as many as the duration takes). */
  numPrompts?: number;
  requestRate: number;
  burstiness?: number;
  arrival?: 'constant' | 'poisson' | 'gamma';
  maxConcurrency?: number;
  rampUpStrategy?: 'linear' | 'exponential';
  rampUpStartRps?: number;
  rampUpEndRps?: number;
  numWarmups: number;
  durationMs?: number;
  maxErrorRate?: number;
  stopOnSaturation: boolean;
  datasetName: 'random' | 'custom' | 'batch';
  datasetPath?: string;
  randomInputLen: number;
  randomOutputLen: number;
  randomRangeRatio: number;
  inputLenDist?: LengthDistribution;
  outputLenDist?: LengthDistribution;
  lenStddevRatio: number;
  outputLen?: number;
  streaming: boolean;
  ignoreEos?: boolean;
  goodput?: string[];
  percentileMetrics?: string;
  metricPercentiles: string;
  seed: number;
  threads?: number;
  /** Hedging across replicas (library @volley/bench `hedge`); the percentile is 0-100 here. */
  hedge?: boolean;
  hedgePercentile?: number;
  hedgeBudget?: number;
  requestTimeoutMs: number;
  sweepConcurrency?: number[];
  sweepRate?: number[];
  sweepAuto?: number;
  sloSearch?: 'rate' | 'concurrency';
  sloGoodFraction: number;
  sloSearchStart?: number;
  sloSearchMax?: number;
  sloSearchStep?: number;
  repetitions: number;
  saveResult: boolean;
  saveDetailed: boolean;
  resultDir?: string;
  resultFilename?: string;
  csv?: string;
  html?: string;
  label?: string;
  tokenTolerance: number;
  simLatencyMs: number;
  simTokensPerSecond: number;
  progress: ProgressMode;
  json: boolean;
  /** Send OPENAI_API_KEY over plain http to a host other than loopback. */
  allowInsecureHttp?: boolean;
}

const SIM_MODEL = 'volley-sim-1';
/** vLLM's default `--num-prompts`. */
const DEFAULT_PROMPTS = 1000;

/** Runs `volley bench`; resolves to the exit code. */
export async function benchCommand(options: BenchCommandOptions): Promise<number> {
  const slos = parseSlos(options.goodput ?? []);
  const percentileMetrics = parseMetrics(options.percentileMetrics);
  const metricPercentiles = parsePercentiles(options.metricPercentiles);
  checkCombination(options, slos);
  const kind = endpointKind(options);

  let sim: Simulator | undefined;
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let baseUrls = options.baseUrl ?? [];
    if (baseUrls.length === 0) {
      sim = await createSimulator({
        latency: { headersMs: options.simLatencyMs, tokensPerSecond: options.simTokensPerSecond },
      });
      baseUrls = [sim.url];
      process.stderr.write(
        `volley bench: no --base-url, so this benchmarks the embedded simulator at ${sim.url} ` +
          `(in this process; ${options.simLatencyMs} ms to headers, ${options.simTokensPerSecond} tokens/s). ` +
          'For real figures point --base-url at a server, or run `volley sim` in another process.\n',
      );
    }
    const baseUrl = baseUrls[0] as string;
    const apiKey = process.env.OPENAI_API_KEY;
    if (apiKey !== undefined && apiKey !== '' && options.allowInsecureHttp !== true)
      for (const url of baseUrls) refuseKeyInClear(url);
    const model =
      options.model ?? (sim !== undefined ? SIM_MODEL : await firstModel(baseUrl, apiKey));
    const prompts = await buildPrompts(options, kind, model);
    const threads = options.threads ?? 1;
    const meta: DocumentMeta = {
      date: new Date().toISOString(),
      label: options.label ?? 'volley-bench',
      backend: kind === 'chat' ? 'openai-chat' : 'openai',
      endpoint_type: kind === 'chat' ? 'openai-chat' : 'openai',
      base_url: displayUrl(baseUrl),
      ...(baseUrls.length > 1 ? { base_urls: baseUrls.map(displayUrl) } : {}),
      embedded_simulator: sim !== undefined,
      model_id: model,
      tokenizer_id: 'gpt-tokenizer (o200k_base)',
      dataset: datasetDescription(options),
      streaming: options.streaming,
      seed: options.seed,
      threads,
      num_warmups: options.numWarmups,
      goodput_slos_ms: { ...slos },
      machine: machineInfo(),
    };
    const progress = createBenchProgress(options.progress);
    const bench = await createBenchmark({
      baseUrl: baseUrls.map((url) => endpointBase(url, options.endpoint)),
      hedge: hedgeOf(options),
      apiKey,
      prompts,
      warmupRequests: options.numWarmups,
      threads,
      seed: options.seed,
      requestTimeoutMs: options.requestTimeoutMs,
      stop: {
        requests:
          options.numPrompts ?? (options.durationMs === undefined ? DEFAULT_PROMPTS : undefined),
        durationMs: options.durationMs,
        maxErrorRate: options.maxErrorRate,
        overSaturation: options.stopOnSaturation,
      },
      slos,
      percentileMetrics,
      metricPercentiles,
      keepRequests: options.saveDetailed,
      tokenTolerance: options.tokenTolerance,
      onProgress: progress.update,
      signal: abort.signal,
    });
    let doc: BenchDocument;
    try {
      doc = await execute(options, bench, meta);
    } finally {
      progress.done();
      await bench.close();
    }
    await writeOutputs(options, doc);
    if (options.json) process.stdout.write(`${JSON.stringify(doc)}\n`);
    else process.stderr.write(formatSummary(doc));
    return abort.signal.aborted ? ExitCode.INTERRUPTED : ExitCode.OK;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sim?.close();
  }
}

async function execute(
  options: BenchCommandOptions,
  bench: Awaited<ReturnType<typeof createBenchmark>>,
  meta: DocumentMeta,
): Promise<BenchDocument> {
  const base: Load = {
    ratePerSecond: options.requestRate,
    arrival: arrivalOf(options),
    burstiness: options.burstiness,
    maxConcurrency: options.maxConcurrency,
    ...(options.rampUpStrategy === undefined
      ? {}
      : {
          rampUp: {
            strategy: options.rampUpStrategy,
            startRps: options.rampUpStartRps ?? 0,
            endRps: options.rampUpEndRps ?? 0,
          },
        }),
  };
  if (options.sweepConcurrency !== undefined) {
    const outcome = await sweep(bench, 'concurrency', options.sweepConcurrency, {
      loadFor: (c) => ({ ...base, ratePerSecond: Infinity, maxConcurrency: c }),
    });
    return sweepDocument(meta, outcome);
  }
  if (options.sweepRate !== undefined) {
    const outcome = await sweep(bench, 'rate', options.sweepRate, {
      loadFor: (rate) => ({ ...base, ratePerSecond: rate }),
    });
    return sweepDocument(meta, outcome);
  }
  if (options.sweepAuto !== undefined) {
    const outcome = await autoSweep(bench, {
      points: options.sweepAuto,
      arrival: base.arrival,
      burstiness: base.burstiness,
      maxConcurrency: options.maxConcurrency,
    });
    return sweepDocument(meta, outcome);
  }
  if (options.sloSearch !== undefined) {
    const axis = options.sloSearch;
    const outcome = await searchSlo(bench, {
      axis,
      goodFraction: options.sloGoodFraction,
      start: options.sloSearchStart,
      max: options.sloSearchMax,
      step: options.sloSearchStep,
      loadFor: (value) =>
        axis === 'rate'
          ? { ...base, ratePerSecond: value }
          : { ...base, ratePerSecond: Infinity, maxConcurrency: value },
    });
    return sloSearchDocument(meta, outcome);
  }
  const results: RunResult[] = [];
  for (let rep = 0; rep < options.repetitions; rep++) {
    results.push(
      await bench.run(base, options.repetitions > 1 ? `repetition ${rep + 1}` : undefined),
    );
    if (results[results.length - 1]?.stop_reason === 'interrupted') break;
  }
  const first = results[0] as RunResult;
  if (results.length > 1) {
    first.repetitions = results.map((r) =>
      Object.fromEntries(HEADLINE_FIELDS.map((f) => [f, headline(r, f)])),
    );
  }
  return runDocument(meta, first);
}

function arrivalOf(options: BenchCommandOptions): Load['arrival'] {
  if (options.arrival !== undefined) return options.arrival;
  // vLLM: burstiness 1 is Poisson, anything else gamma; no flag is Poisson.
  if (options.burstiness === undefined || options.burstiness === 1) return 'poisson';
  return options.burstiness === Infinity ? 'constant' : 'gamma';
}

function endpointKind(options: BenchCommandOptions): 'chat' | 'completions' {
  if (options.endpointType !== undefined)
    return options.endpointType === 'openai' ? 'completions' : 'chat';
  if (options.endpoint !== undefined)
    return options.endpoint.endsWith('/chat/completions') ? 'chat' : 'completions';
  return 'chat';
}

/**
 * The base URL the shards append `/chat/completions` or `/completions` to. vLLM's `--endpoint`
 * is a path appended to `--base-url` (`http://host:8000` + `/v1/completions`); Volley's base
 * URLs end in `/v1`. Both work: an endpoint path is split into its prefix and its API path.
 */
function endpointBase(baseUrl: string, endpoint: string | undefined): string {
  if (endpoint === undefined) return baseUrl;
  const api = endpoint.endsWith('/chat/completions') ? '/chat/completions' : '/completions';
  if (!endpoint.endsWith(api)) {
    throw new CliError(
      `--endpoint ${JSON.stringify(endpoint)} must end in /chat/completions or /completions`,
      ExitCode.USAGE,
      'VOLLEY_ERR_INVALID_OPTIONS',
    );
  }
  const prefix = endpoint.slice(0, -api.length);
  const url = new URL(baseUrl);
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith(prefix) ? path : path + prefix;
  return url.toString().replace(/\/+$/, '');
}

/** As `volley run`: a key crosses a network in clear only when asked to. */
function refuseKeyInClear(baseUrl: string): void {
  const url = new URL(baseUrl);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
  if (url.protocol === 'http:' && !loopback) {
    throw usage(
      `OPENAI_API_KEY would be sent in clear to ${url.host}; use https, or pass --allow-insecure-http`,
    );
  }
}

/** A base URL as results show it: no credentials, no query. */
function displayUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  url.username = '';
  url.password = '';
  url.search = '';
  return url.toString().replace(/\/+$/, '');
}

async function firstModel(baseUrl: string, apiKey: string | undefined): Promise<string> {
  const url = `${baseUrl.replace(/\/+$/, '')}/models`;
  try {
    const response = await fetch(url, {
      headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` },
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await response.json()) as { data?: Array<{ id?: unknown }> };
    const id = body.data?.[0]?.id;
    if (response.ok && typeof id === 'string') {
      process.stderr.write(`volley bench: no --model, using the server's first model: ${id}\n`);
      return id;
    }
    throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new CliError(
      `no --model given and ${displayUrl(url)} did not list one (${scrubSecrets(String(error))}); pass --model`,
      ExitCode.USAGE,
      'VOLLEY_ERR_INVALID_OPTIONS',
    );
  }
}

async function buildPrompts(
  options: BenchCommandOptions,
  kind: 'chat' | 'completions',
  model: string,
): Promise<BenchPrompt[]> {
  const ignoreEos = options.ignoreEos ?? options.datasetName === 'random';
  const body = { model, stream: options.streaming, ignoreEos };
  // Duration-bound runs cycle through the prompts.
  const wanted = (options.numPrompts ?? DEFAULT_PROMPTS) + options.numWarmups;
  if (options.datasetName === 'random') {
    const fixed = options.randomRangeRatio > 0 ? 'uniform' : 'fixed';
    return syntheticPrompts({
      ...body,
      count: Math.min(wanted, 100_000),
      endpoint: kind,
      inputLen: options.randomInputLen,
      outputLen: options.randomOutputLen,
      inputDistribution: options.inputLenDist ?? fixed,
      outputDistribution: options.outputLenDist ?? fixed,
      rangeRatio: options.randomRangeRatio,
      stddevRatio: options.lenStddevRatio,
      seed: options.seed,
    });
  }
  const path = options.datasetPath as string;
  const requests: FileRequest[] = [];
  for await (const raw of readJsonlLines(path)) {
    if ('issue' in raw) throw badLine(path, raw.issue.message);
    const parsed = parseBatchLine(raw, { model });
    if (!parsed.ok) throw badLine(path, parsed.issue.message);
    const request = parsed.request;
    let url: string = request.url;
    const where = `${path} line ${raw.lineNo}`;
    if (
      kind === 'completions' &&
      url === '/v1/chat/completions' &&
      options.endpointType !== undefined
    ) {
      request.body = asCompletion(request.body, where);
      url = '/v1/completions';
    }
    requests.push({ url, body: request.body, where });
    if (requests.length >= wanted) break;
  }
  if (requests.length === 0) throw badLine(path, 'has no requests');
  return filePrompts(requests, { ...body, outputLen: options.outputLen });
}

/** A chat request of one user message, as a completions request (`--endpoint-type openai`). */
function asCompletion(body: Record<string, unknown>, where: string): Record<string, unknown> {
  const messages = body.messages as Array<{ role?: unknown; content?: unknown }>;
  const only = messages.length === 1 ? messages[0] : undefined;
  if (only?.role !== 'user' || typeof only.content !== 'string') {
    throw new CliError(
      `${where}: --endpoint-type openai sends prompts to /completions, but this line's messages are not a single user message`,
      ExitCode.USAGE,
      'VOLLEY_ERR_INVALID_OPTIONS',
    );
  }
  const { messages: _m, ...rest } = body;
  return { ...rest, prompt: only.content };
}

function badLine(path: string, message: string): CliError {
  return new CliError(
    `--dataset-path ${path}: ${message}`,
    ExitCode.USAGE,
    'VOLLEY_ERR_INVALID_OPTIONS',
  );
}

function datasetDescription(options: BenchCommandOptions): Record<string, unknown> {
  if (options.datasetName !== 'random')
    return { name: options.datasetName, path: options.datasetPath };
  const fixed = options.randomRangeRatio > 0 ? 'uniform' : 'fixed';
  return {
    name: 'random',
    random_input_len: options.randomInputLen,
    random_output_len: options.randomOutputLen,
    random_range_ratio: options.randomRangeRatio,
    input_len_dist: options.inputLenDist ?? fixed,
    output_len_dist: options.outputLenDist ?? fixed,
    len_stddev_ratio: options.lenStddevRatio,
  };
}

const usage = (message: string): CliError =>
  new CliError(message, ExitCode.USAGE, 'VOLLEY_ERR_INVALID_OPTIONS');

/** The library's hedge policy from the flags; undefined without --hedge. */
function hedgeOf(
  options: BenchCommandOptions,
): { percentile?: number; budget?: number } | undefined {
  if (options.hedge !== true) return undefined;
  return {
    ...(options.hedgePercentile === undefined ? {} : { percentile: options.hedgePercentile / 100 }),
    ...(options.hedgeBudget === undefined ? {} : { budget: options.hedgeBudget }),
  };
}

function checkCombination(options: BenchCommandOptions, slos: Slos): void {
  if (options.hedge !== true && (options.hedgePercentile ?? options.hedgeBudget) !== undefined)
    throw usage('--hedge-percentile and --hedge-budget need --hedge');
  if (options.hedge === true && (options.baseUrl?.length ?? 0) < 2)
    throw usage(
      '--hedge sends a copy to another replica: give two --base-url or more (each a replica of the same endpoint)',
    );
  if (
    options.hedgePercentile !== undefined &&
    !(options.hedgePercentile > 0 && options.hedgePercentile < 100)
  )
    throw usage(`--hedge-percentile must be in (0, 100), got ${options.hedgePercentile}`);
  const modes = [
    options.sweepConcurrency !== undefined,
    options.sweepRate !== undefined,
    options.sweepAuto !== undefined,
    options.sloSearch !== undefined,
  ].filter(Boolean).length;
  if (modes > 1)
    throw usage('choose one of --sweep-concurrency, --sweep-rate, --sweep-auto, --slo-search');
  if (options.sloSearch !== undefined && Object.keys(slos).length === 0)
    throw usage('--slo-search needs SLOs: --goodput ttft:500 tpot:50 (ms)');
  if (options.repetitions > 1 && modes > 0)
    throw usage('--repetitions applies to single runs, not to sweeps or searches');
  if (options.datasetName !== 'random' && options.datasetPath === undefined)
    throw usage(`--dataset-name ${options.datasetName} needs --dataset-path`);
  if (options.datasetName === 'random' && options.datasetPath !== undefined)
    throw usage('--dataset-path needs --dataset-name custom or batch');
  if (options.rampUpStrategy !== undefined) {
    if (options.rampUpStartRps === undefined || options.rampUpEndRps === undefined)
      throw usage('--ramp-up-strategy needs --ramp-up-start-rps and --ramp-up-end-rps');
    if (options.requestRate !== Infinity)
      throw usage('--ramp-up-strategy sets the rate itself; leave out --request-rate');
  }
  if (!options.streaming && (slos.ttft !== undefined || slos.tpot !== undefined))
    throw usage('TTFT and TPOT SLOs need streaming; drop --no-streaming or use e2el');
  if (options.arrival === 'gamma' && options.burstiness === undefined)
    throw usage('--arrival gamma needs --burstiness');
}

/**
 * SLOs in vLLM's `--goodput` form (`ttft:500 tpot:50 e2el:2000`, ms), also accepting
 * `ttft=500ms,tpot=50ms` (the issue's `--slo` spelling).
 */
export function parseSlos(items: readonly string[]): Slos {
  const slos: Slos = {};
  for (const item of items
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean)) {
    const match = /^(ttft|tpot|e2el)\s*[:=]\s*([0-9]*\.?[0-9]+)\s*(ms)?$/i.exec(item);
    if (match === null) {
      throw usage(
        `--goodput ${JSON.stringify(item)}: expected KEY:VALUE with KEY ttft, tpot or e2el and VALUE in ms (e.g. ttft:500)`,
      );
    }
    slos[(match[1] as string).toLowerCase() as keyof Slos] = Number(match[2]);
  }
  return slos;
}

function parseMetrics(value: string | undefined): VllmMetric[] {
  if (value === undefined) return ['ttft', 'tpot', 'itl', 'e2el'];
  const metrics = value.split(',').map((s) => s.trim());
  for (const m of metrics) {
    if (m !== 'ttft' && m !== 'tpot' && m !== 'itl' && m !== 'e2el')
      throw usage(
        `--percentile-metrics: unknown metric ${JSON.stringify(m)} (ttft, tpot, itl, e2el)`,
      );
  }
  return metrics as VllmMetric[];
}

function parsePercentiles(value: string): number[] {
  return value.split(',').map((s) => {
    const p = Number(s.trim());
    if (!(p > 0 && p <= 100))
      throw usage(`--metric-percentiles: ${JSON.stringify(s)} is not in (0, 100]`);
    return p;
  });
}

async function writeOutputs(options: BenchCommandOptions, doc: BenchDocument): Promise<void> {
  const written: string[] = [];
  if (options.saveResult || options.resultFilename !== undefined) {
    const name = options.resultFilename ?? defaultResultName(doc);
    const path = options.resultDir === undefined ? name : join(options.resultDir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${JSON.stringify(doc, null, 2)}\n`);
    written.push(`result ${path}`);
  }
  if (options.csv !== undefined) {
    await writeFile(options.csv, runsCsv(doc));
    written.push(`csv ${options.csv}`);
    const perRequest = requestsCsv(doc);
    if (perRequest !== undefined) {
      const path = options.csv.replace(/(\.csv)?$/, '.requests.csv');
      await writeFile(path, perRequest);
      written.push(`per-request csv ${path}`);
    }
  }
  if (options.html !== undefined) {
    await writeFile(options.html, renderHtmlReport(doc));
    written.push(`html ${options.html}`);
  }
  for (const line of written)
    process.stderr.write(`volley bench: wrote ${escapeForTerminal(line)}\n`);
}

/** vLLM's default name: `{label}-{rate}qps[-concurrency{c}]-{model}-{date}.json`. */
function defaultResultName(doc: BenchDocument): string {
  const model = doc.model_id.split('/').pop() ?? doc.model_id;
  const date = doc.date.replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  if (doc.kind !== 'run') return `${doc.label}-${doc.kind}-${model}-${date}.json`;
  const rate = doc.request_rate === 'inf' ? 'inf' : String(doc.request_rate);
  const cap = doc.max_concurrency === null ? '' : `-concurrency${doc.max_concurrency}`;
  return `${doc.label}-${rate}qps${cap}-${model}-${date}.json`.replace(/[^\w.-]/g, '_');
}

/** The end-of-run summary for people (stderr). */
export function formatSummary(doc: BenchDocument): string {
  const lines: string[] = [];
  const fmt = (v: number | null | undefined, d = 2): string =>
    v === null || v === undefined ? '—' : v.toFixed(d);
  for (const run of runsOf(doc)) {
    const m = run.metrics;
    lines.push(`${'='.repeat(18)} ${escapeForTerminal(run.label)} ${'='.repeat(18)}`);
    const rows: Array<[string, string]> = [
      ['Successful requests', String(run.completed)],
      ['Failed requests', String(run.failed)],
      ['Stop reason', run.stop_reason],
      ['Benchmark duration (s)', fmt(run.duration)],
      ['Total input tokens', String(run.total_input_tokens)],
      ['Total generated tokens', String(run.total_output_tokens)],
      ['Request throughput (req/s)', fmt(run.request_throughput)],
      ['Request goodput (req/s)', fmt(run.request_goodput)],
      ['Output token throughput (tok/s)', fmt(run.output_throughput)],
      ['Total token throughput (tok/s)', fmt(run.total_token_throughput)],
      [
        'TTFT mean / p50 / p99 (ms)',
        `${fmt(m.ttft_ms.mean)} / ${fmt(m.ttft_ms.percentiles.p50)} / ${fmt(m.ttft_ms.percentiles.p99)}`,
      ],
      ['First chunk p50 (ms)', fmt(m.first_chunk_ms.percentiles.p50)],
      [
        'TPOT mean / p50 / p99 (ms)',
        `${fmt(m.tpot_ms.mean)} / ${fmt(m.tpot_ms.percentiles.p50)} / ${fmt(m.tpot_ms.percentiles.p99)}`,
      ],
      [
        'ITL per chunk p50 / p99 (ms)',
        `${fmt(m.itl_per_chunk_ms.percentiles.p50)} / ${fmt(m.itl_per_chunk_ms.percentiles.p99)}`,
      ],
      [
        'E2E p50 / p99 (ms)',
        `${fmt(m.e2el_ms.percentiles.p50)} / ${fmt(m.e2el_ms.percentiles.p99)}`,
      ],
      [
        'E2E from intended p50 / p99 (ms)',
        `${fmt(m.e2el_from_intended_ms.percentiles.p50)} / ${fmt(m.e2el_from_intended_ms.percentiles.p99)}`,
      ],
      [
        'Schedule lag p50 / p99 (ms)',
        `${fmt(m.schedule_lag_ms.percentiles.p50)} / ${fmt(m.schedule_lag_ms.percentiles.p99)}`,
      ],
    ];
    const errors = Object.entries(run.errors.by_class);
    if (errors.length > 0) rows.push(['Errors', errors.map(([k, v]) => `${k} ${v}`).join(', ')]);
    if (run.replicas.length > 1)
      rows.push([
        'Calls per replica',
        run.replicas.map((r) => `${escapeForTerminal(r.base_url)} ${r.calls}`).join(', '),
      ]);
    if (run.hedging !== null)
      rows.push([
        'Hedged / billed requests',
        `${run.hedged_requests} / ${run.billed_requests} (copy answered first: ${run.hedging.copy_won})`,
      ]);
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) lines.push(`${`${k}:`.padEnd(width + 2)}${v}`);
    const h = run.client_health;
    if (h.client_limited) {
      lines.push('CLIENT-LIMITED: the load generator, not the server, limited this result:');
      for (const reason of h.reasons) lines.push(`  - ${escapeForTerminal(reason)}`);
    } else {
      lines.push(
        `Client health: ok (CPU ${h.process_cpu_cores} of ${h.cores_available} cores, lag p99 ${fmt(h.schedule_lag_p99_ms)} ms)`,
      );
    }
    for (const w of run.warnings) lines.push(`warning: ${escapeForTerminal(w)}`);
  }
  if (doc.kind === 'sweep') {
    const knee = doc.sweep.knee;
    lines.push(
      knee === null
        ? 'Knee: none found (throughput never levelled off)'
        : `Knee: ${doc.sweep.axis} ${knee.load} (${knee.request_throughput.toFixed(2)} req/s)`,
    );
  }
  if (doc.kind === 'slo_search') {
    const s = doc.slo_search;
    lines.push(
      `SLO search (${s.axis}): highest meeting the SLOs ${s.best ?? 'none'}; lowest failing ${s.lowestFailing ?? 'none'}; step ${s.step}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Live progress on stderr: a redrawn line on a terminal, a line every 5 s otherwise. */
function createBenchProgress(mode: ProgressMode): {
  update: (p: BenchProgress) => void;
  done: () => void;
} {
  const stream = process.stderr;
  const resolved =
    mode === 'auto'
      ? stream.isTTY === true && process.env.TERM !== 'dumb'
        ? 'tty'
        : 'plain'
      : mode;
  const live = resolved === 'tty' ? createLogUpdate(stream) : undefined;
  let lastPlain = 0;
  let lastDone = 0;
  let lastAt = 0;
  let rate = 0;
  return {
    update(p) {
      const dt = p.elapsedMs - lastAt;
      if (dt >= 1000) {
        rate = ((p.done - lastDone) * 1000) / dt;
        lastDone = p.done;
        lastAt = p.elapsedMs;
      }
      if (resolved === 'none') return;
      if (resolved === 'json') {
        if (p.elapsedMs - lastPlain < 1000) return;
        lastPlain = p.elapsedMs;
        stream.write(`${JSON.stringify({ type: 'progress', version: 1, ...p })}\n`);
        return;
      }
      const total = p.planned === undefined ? '' : `/${p.planned}`;
      const eta =
        p.planned !== undefined && rate > 0
          ? ` │ ETA ${formatEta(((p.planned - p.done) / rate) * 1000)}`
          : '';
      const line =
        `volley bench ${escapeForTerminal(p.label)}${p.phase === 'warmup' ? ' (warm-up)' : ''} │ ` +
        `${p.done}${total} done │ ${rate.toFixed(1)} req/s │ in flight ${p.inFlight} │ failed ${p.failed} │ ` +
        `out ${Math.round(p.outputTokens)} tok${eta}`;
      if (live !== undefined) live(line);
      else if (p.elapsedMs - lastPlain >= 5000) {
        lastPlain = p.elapsedMs;
        stream.write(`${line}\n`);
      }
    },
    done() {
      live?.clear();
      live?.done();
    },
  };
}

/** Runs `volley bench compare a.json b.json`. */
export async function benchCompareCommand(a: string, b: string, json: boolean): Promise<number> {
  const read = async (path: string): Promise<BenchDocument> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw usage(`cannot read ${path}: ${(error as Error).message}`);
    }
    try {
      return readDocument(JSON.parse(text), path);
    } catch (error) {
      throw usage(`${path}: ${(error as Error).message}`);
    }
  };
  const comparison = compareResults(await read(a), await read(b), { a, b });
  if (json) process.stdout.write(`${JSON.stringify(comparison)}\n`);
  else process.stdout.write(formatComparison(comparison));
  return ExitCode.OK;
}
