/**
 * Turns the runs of one matrix into summaries (median and min-max per contender x scenario, ratios
 * paired within a repetition) and renders them as Markdown and as a self-contained HTML page.
 *
 * Run directly to re-render an existing result file:
 *   node --import tsx throughput/report.ts results/throughput-<date>-<sha>.json
 */
import type { DocumentBase, MatrixRun, Stat } from '../shared/report.js';
import * as common from '../shared/report.js';
import type { ContenderResult } from './harness.js';
import type { Scenario } from './scenarios.js';
import type { WorkloadName } from './workload.js';
import { STREAM_CHUNKS } from './workload.js';

export const SCHEMA = 'volley-bench-throughput/1';

export type Bound = 'latency' | 'client' | 'server' | 'shared';

export type RunRecord = MatrixRun<
  ContenderResult,
  { cpuMs: number; cores: number; cpuMsPer1k: number },
  Bound
>;

export interface Summary {
  scenario: string;
  contender: string;
  runs: number;
  failedRuns: number;
  noisyRuns: number;
  /** Noisy runs that were repeated (not counted in `runs`). */
  replacedRuns: number;
  errors: number;
  reqPerSec: Stat | undefined;
  /** Each run divided by undici-raw's run in the same rep and scenario, then the median. */
  ratioToUndiciRaw: Stat | undefined;
  ratioToAutocannon: Stat | undefined;
  cpuMsPer1k: Stat | undefined;
  clientCores: Stat | undefined;
  serverCpuMsPer1k: Stat | undefined;
  serverCores: Stat | undefined;
  latencyP50Ms: Stat | undefined;
  latencyP99Ms: Stat | undefined;
  eventLoopDelayP99Ms: Stat | undefined;
  maxRssMb: Stat | undefined;
  /** The most common bound over the runs. */
  bound: Bound | undefined;
}

export interface BenchDocument
  extends DocumentBase<{
    contenders: string[];
    scenarios: Scenario[];
    noisyOtherCores: number;
    retryNoisy: number;
    /** The load server; absent in files written before nginx was an option (they used sim). */
    server?: 'sim' | 'nginx';
    /** Absent in files written before there was a choice (they ran the short chat). */
    workload?: WorkloadName;
  }> {
  schema: typeof SCHEMA;
  runs: RunRecord[];
  summaries: Summary[];
}

const reqPerSec = (result: ContenderResult): number => result.reqPerSec;

export function summarize(
  runs: readonly RunRecord[],
  scenarios: readonly Scenario[],
  contenders: readonly string[],
): Summary[] {
  return common.groupRuns(runs, scenarios, contenders, reqPerSec).map((group) => ({
    ...group.head,
    reqPerSec: group.pick((run) => run.result?.reqPerSec),
    ratioToUndiciRaw: group.ratioTo('undici-raw'),
    ratioToAutocannon: group.ratioTo('autocannon'),
    cpuMsPer1k: group.pick((run) => run.result?.cpuMsPer1k),
    clientCores: group.pick((run) => run.result?.clientCores),
    serverCpuMsPer1k: group.pick((run) => run.server?.cpuMsPer1k),
    ...group.tail,
  }));
}

// ---------------------------------------------------------------------------------------------
// Markdown

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function scenarioTitle(scenario: Scenario): string {
  return `Server latency ${scenario.latencyMs} ms, concurrency ${scenario.concurrency} — ${integer.format(scenario.count)} requests per run (+${integer.format(scenario.warmup)} warm-up)`;
}

/** Volley's best mode at one scenario against the targets set for it. */
export interface Headline {
  scenario: string;
  best: string;
  reqPerSec: number;
  ratioToUndiciRaw: number | undefined;
  ratioToOpenaiSdk: number | undefined;
}

export function headline(doc: BenchDocument, scenarioId = '0ms-c256'): Headline | undefined {
  const rows = doc.summaries.filter((summary) => summary.scenario === scenarioId);
  const volley = rows
    .filter((summary) => summary.contender.startsWith('volley-') && summary.reqPerSec !== undefined)
    .sort((a, b) => (b.reqPerSec?.median ?? 0) - (a.reqPerSec?.median ?? 0))[0];
  if (volley?.reqPerSec === undefined) return undefined;
  const toSdk = common.stat(
    common.pairedRatios(doc.runs, scenarioId, volley.contender, 'openai-sdk', reqPerSec),
  );
  return {
    scenario: scenarioId,
    best: volley.contender,
    reqPerSec: volley.reqPerSec.median,
    ratioToUndiciRaw: volley.ratioToUndiciRaw?.median,
    ratioToOpenaiSdk: toSdk?.median,
  };
}

export const HOW_TO_READ = `## How to read this

- **Setup.** Closed loop: each contender keeps C requests in flight until it has completed the
  run's request count. Every contender is its own process; the server (\`volley sim\`, or with
  \`--server nginx\` nginx returning one fixed completion at a fraction of the simulator's CPU)
  is another, restarted for every run. Client and server share the same cores, so a faster client also means
  a busier server: **compare ratios within one run, not absolute numbers across runs or machines.**
- **Order.** Repetitions are rep-major (every contender once, then again), with the contender
  order rotated each rep, so slow drift of the machine hits every contender alike.
- **req/s** = completed requests / wall time of the measured window (warm-up excluded). Median over
  the reps, with the min–max spread.
- **× undici-raw**, **× autocannon**: each run's req/s divided by that peer's run in the same rep
  and scenario, then the median (min–max) of those paired ratios. autocannon replays fixed bytes
  and parses nothing: it is the raw HTTP ceiling (so is wrk, in C, when named; it runs for a
  duration, not a count). undici-raw is one undici Pool with C lanes, the
  floor Volley's \`async\` mode is built on.
- **client CPU ms/1k req** = the contender process's user+system CPU (all its threads, worker
  threads included) over the window, per 1,000 completed requests. It is also µs per request,
  and the most portable number here.
- **client cores** = client CPU / wall time (1.00 = one core busy for the whole window).
- **server CPU ms/1k req** = the simulator's utime+stime (/proc, 10 ms ticks) per 1,000 requests.
- **p50 / p99** = per-request latency in ms, request start to parsed response (Volley: wall time
  per \`chat\` call, so its queueing is included; autocannon: its own histogram, whole ms).
- **loop p99** = event-loop delay p99 of the client's main thread (\`monitorEventLoopDelay\`, 10 ms
  resolution); high values mean the loop, not the network, set the pace.
- **bound** = what limited the run: \`latency\` (req/s ≥ 80% of the Little's-law limit C / latency),
  \`client\` (client ≥ 0.85 cores), \`server\` (server ≥ 0.85 cores), else \`shared\` (the two
  together filled the box).
- **noisy** = other processes on the machine used more than ${common.NOISY_OTHER_CORES} cores during the window
  (/proc/stat busy minus client minus server), or the hypervisor stole that much. Before every
  run the runner waits (up to 10 s) for the machine to go quiet; a noisy run is repeated once
  right away and the repeat replaces it ("noisy re-run" in the runs column). A run still noisy
  after that stays in the medians and is counted as noisy; the JSON file holds every run.
`;

export function renderMarkdown(doc: BenchDocument): string {
  const server =
    doc.config.server === 'nginx' ? 'nginx reference server (fixed answer, 0 ms)' : '`volley sim`';
  const workload =
    doc.config.workload === 'long-stream'
      ? `long stream (${STREAM_CHUNKS} SSE chunks per answer, assembled)`
      : 'short chat';
  const lines = common.preamble(doc, `Throughput: ${workload} against ${server}, ${doc.startedAt}`);
  const top = headline(doc);
  if (top !== undefined) {
    lines.push(
      `**Volley at ${top.scenario}:** best mode \`${top.best}\`, ${common.fmt(top.reqPerSec)} req/s; ` +
        `${common.fmt(top.ratioToUndiciRaw, 2)}× undici-raw (target ≥ 0.70), ${common.fmt(top.ratioToOpenaiSdk, 2)}× openai-sdk (target ≥ 5).` +
        // Quick runs are too short to warm the JIT: their ratios must not be read as results.
        (doc.config.quick ? ' *Quick mode: a smoke test, not a measurement.*' : ''),
    );
    lines.push('');
  }
  lines.push(
    ...common.scenarioTables(
      doc.config.scenarios,
      doc.summaries,
      scenarioTitle,
      [
        '| contender | req/s (median) | min–max | × undici-raw | × autocannon | client CPU ms/1k req | client cores | server CPU ms/1k req | p50 ms | p99 ms | loop p99 ms | bound | errors | runs |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|',
      ],
      (row) =>
        `| ${row.contender} | ${common.fmt(row.reqPerSec?.median)} | ${common.spread(row.reqPerSec)} | ${common.ratio(row.ratioToUndiciRaw)} | ${common.ratio(row.ratioToAutocannon)} | ${common.fmt(row.cpuMsPer1k?.median)} | ${common.fmt(row.clientCores?.median, 2)} | ${common.fmt(row.serverCpuMsPer1k?.median)} | ${common.fmt(row.latencyP50Ms?.median, 1)} | ${common.fmt(row.latencyP99Ms?.median, 1)} | ${common.fmt(row.eventLoopDelayP99Ms?.median, 1)} | ${row.bound ?? '–'} | ${common.fmt(row.errors)} | ${common.runsCell(row)} |`,
    ),
    ...common.failureLines(doc.runs),
  );
  lines.push(HOW_TO_READ);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// HTML

/** Bar chart sizes and colours, shared with the CLI benchmark's report (same contender names). */
export const CHARTS = {
  width: 640,
  label: 130,
  barHeight: 22,
  gap: 8,
  top: 24,
  valueRoom: 90,
  textY: 15,
  colors: {
    autocannon: '#888888',
    'undici-raw': '#4c78a8',
    'fetch-limiter': '#f58518',
    'openai-sdk': '#e45756',
    'volley-async': '#54a24b',
    'volley-threads': '#2f7d32',
    'volley-async-metrics': '#88d27a',
    'volley-threads-metrics': '#1b4d1e',
    'volley-threads-1': '#7fbf7b',
    'volley-threads-2': '#1b5e20',
    wrk: '#555555',
    'lean-undici': '#4c78a8',
  },
  fallbackColor: '#999999',
};

export function renderHtml(doc: BenchDocument, markdown: string): string {
  return common.renderPage({
    title: `Volley throughput ${doc.startedAt}`,
    markdown,
    scenarios: doc.config.scenarios,
    summaries: doc.summaries,
    heading: (scenario) => `<h2>${common.escapeHtml(scenarioTitle(scenario))}</h2>`,
    charts: (rows) =>
      common.rateAndCpuCharts(
        CHARTS,
        rows,
        ['req/s (median, whisker = min–max)', (row) => row.reqPerSec, 'req/s'],
        ['client CPU ms per 1,000 requests (lower is better)', (row) => row.cpuMsPer1k, 'ms'],
      ),
  });
}

common.rerenderWhenRun<BenchDocument>(
  import.meta.url,
  'throughput/report.ts',
  (doc) => {
    doc.summaries = summarize(doc.runs, doc.config.scenarios, doc.config.contenders);
  },
  renderMarkdown,
  renderHtml,
);
