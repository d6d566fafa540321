/**
 * Summaries of one embeddings matrix (median and min-max per contender x scenario, ratios paired
 * within a repetition), the threads/async crossover table, a mode-choice rule fitted to the data,
 * and the Markdown and HTML renderings.
 *
 * Run directly to re-render an existing result file:
 *   node --import tsx embeddings/report.ts results/embeddings-<date>-<sha>.json
 */
import type { DocumentBase, MatrixRun, Stat } from '../shared/report.js';
import * as common from '../shared/report.js';
import type { EmbedContenderResult } from './harness.js';
import type { EmbedScenario, Encoding } from './scenarios.js';
import { DIMENSIONS, ENCODINGS, INPUTS_PER_REQUEST, scenarioId } from './scenarios.js';

export const SCHEMA = 'volley-bench-embeddings/1';

/** A threads/async ratio above this is a clear threads win (and below its inverse, an async win). */
export const CLEAR_WIN = 1.1;

export type Bound = 'client' | 'server' | 'shared';

export type RunRecord = MatrixRun<
  EmbedContenderResult,
  { cpuMs: number; cores: number; cpuMsPer1kVectors: number },
  Bound
>;

export interface Summary {
  scenario: string;
  contender: string;
  runs: number;
  failedRuns: number;
  noisyRuns: number;
  replacedRuns: number;
  errors: number;
  vectorsPerSec: Stat | undefined;
  /** Each run divided by undici-raw's run in the same rep and scenario, then the median. */
  ratioToUndiciRaw: Stat | undefined;
  ratioToOpenaiSdk: Stat | undefined;
  cpuMsPer1kVectors: Stat | undefined;
  clientCores: Stat | undefined;
  serverCpuMsPer1kVectors: Stat | undefined;
  serverCores: Stat | undefined;
  latencyP50Ms: Stat | undefined;
  latencyP99Ms: Stat | undefined;
  eventLoopDelayP99Ms: Stat | undefined;
  maxRssMb: Stat | undefined;
  bound: Bound | undefined;
}

/** Per scenario: Volley's two modes against each other and its best mode against the SDK. */
export interface ScenarioVerdict {
  scenario: string;
  dimensions: number;
  inputsPerRequest: number;
  encoding: Encoding;
  decodedBytesPerResponse: number;
  wireBytesPerResponse: number | undefined;
  /** volley-threads / volley-async, paired per rep. */
  threadsOverAsync: Stat | undefined;
  /** The Volley mode with the higher median vectors/s. */
  bestMode: string | undefined;
  bestVectorsPerSec: number | undefined;
  /** Best mode / openai-sdk, paired per rep. */
  bestOverOpenaiSdk: Stat | undefined;
  bestOverUndiciRaw: Stat | undefined;
}

/** A rule "threads when inputs × dimensions × 4 ≥ threshold", fitted to the verdicts. */
export interface ModeRule {
  encoding: Encoding | 'any';
  /** Decoded bytes per response from which threads are chosen; undefined = never threads. */
  thresholdBytes: number | undefined;
  /** Cells where the rule picks the slower mode, and by how much (1 - picked / best). */
  misses: Array<{ scenario: string; lossPct: number }>;
  /** Mean over cells of 1 - picked / best, in %. */
  meanLossPct: number;
  /** The rule's boundary is somewhere between these two sizes (bytes): the last async cell and the first threads cell. */
  between: [number | undefined, number | undefined];
}

export interface BenchDocument
  extends DocumentBase<{
    contenders: string[];
    scenarios: EmbedScenario[];
    noisyOtherCores: number;
    retryNoisy: number;
    quietWaitMaxMs: number;
  }> {
  schema: typeof SCHEMA;
  /** Bytes of one response body on the wire, per scenario (one probe request each). */
  wireBytes: Record<string, number>;
  runs: RunRecord[];
  summaries: Summary[];
  verdicts: ScenarioVerdict[];
  rules: ModeRule[];
}

const vectorsPerSec = (result: EmbedContenderResult): number => result.vectorsPerSec;

/** Each run of `contender` divided by `reference`'s run in the same rep and scenario. */
function pairedStat(
  runs: readonly RunRecord[],
  scenario: string,
  contender: string,
  reference: string,
): Stat | undefined {
  return common.stat(common.pairedRatios(runs, scenario, contender, reference, vectorsPerSec));
}

export function summarize(
  runs: readonly RunRecord[],
  scenarios: readonly EmbedScenario[],
  contenders: readonly string[],
): Summary[] {
  return common.groupRuns(runs, scenarios, contenders, vectorsPerSec).map((group) => ({
    ...group.head,
    vectorsPerSec: group.pick((run) => run.result?.vectorsPerSec),
    ratioToUndiciRaw: group.ratioTo('undici-raw'),
    ratioToOpenaiSdk: group.ratioTo('openai-sdk'),
    cpuMsPer1kVectors: group.pick((run) => run.result?.cpuMsPer1kVectors),
    clientCores: group.pick((run) => run.result?.clientCores),
    serverCpuMsPer1kVectors: group.pick((run) => run.server?.cpuMsPer1kVectors),
    ...group.tail,
  }));
}

export function verdicts(
  runs: readonly RunRecord[],
  summaries: readonly Summary[],
  scenarios: readonly EmbedScenario[],
  wireBytes: Record<string, number>,
): ScenarioVerdict[] {
  return scenarios.map((scenario) => {
    const volley = summaries
      .filter(
        (summary) =>
          summary.scenario === scenario.id &&
          (summary.contender === 'volley-threads' || summary.contender === 'volley-async') &&
          summary.vectorsPerSec !== undefined,
      )
      .sort((a, b) => (b.vectorsPerSec?.median ?? 0) - (a.vectorsPerSec?.median ?? 0))[0];
    const best = volley?.contender;
    return {
      scenario: scenario.id,
      dimensions: scenario.dimensions,
      inputsPerRequest: scenario.inputsPerRequest,
      encoding: scenario.encoding,
      decodedBytesPerResponse: scenario.decodedBytesPerResponse,
      wireBytesPerResponse: wireBytes[scenario.id],
      threadsOverAsync: pairedStat(runs, scenario.id, 'volley-threads', 'volley-async'),
      bestMode: best,
      bestVectorsPerSec: volley?.vectorsPerSec?.median,
      bestOverOpenaiSdk:
        best === undefined ? undefined : pairedStat(runs, scenario.id, best, 'openai-sdk'),
      bestOverUndiciRaw:
        best === undefined ? undefined : pairedStat(runs, scenario.id, best, 'undici-raw'),
    };
  });
}

/**
 * Fits "threads when inputs × dimensions × 4 ≥ T": every cell's size is a candidate T (plus
 * "never"); the one losing the least throughput on average against the better mode per cell wins
 * (ties: the larger T, since async is the default and costs no threads).
 */
export function fitRule(all: readonly ScenarioVerdict[], encoding: Encoding | 'any'): ModeRule {
  const cells = all
    .filter((cell) => (encoding === 'any' || cell.encoding === encoding) && cell.threadsOverAsync)
    .sort((a, b) => a.decodedBytesPerResponse - b.decodedBytesPerResponse);
  const loss = (ratio: number, threads: boolean): number =>
    // ratio = threads / async; picking the slower one loses 1 - slower / faster.
    threads ? Math.max(0, 1 - ratio) : Math.max(0, 1 - 1 / ratio);
  const candidates = [...new Set(cells.map((cell) => cell.decodedBytesPerResponse)), Infinity];
  let best: ModeRule | undefined;
  for (const threshold of candidates) {
    const misses: ModeRule['misses'] = [];
    let total = 0;
    for (const cell of cells) {
      const ratio = cell.threadsOverAsync?.median ?? 1;
      const lost = loss(ratio, cell.decodedBytesPerResponse >= threshold);
      total += lost;
      if (lost > 0) misses.push({ scenario: cell.scenario, lossPct: round1(lost * 100) });
    }
    const meanLossPct = cells.length > 0 ? round1((total / cells.length) * 100) : 0;
    if (best === undefined || meanLossPct <= best.meanLossPct) {
      const below = cells.filter((cell) => cell.decodedBytesPerResponse < threshold).at(-1);
      best = {
        encoding,
        thresholdBytes: Number.isFinite(threshold) ? threshold : undefined,
        misses,
        meanLossPct,
        between: [
          below?.decodedBytesPerResponse,
          Number.isFinite(threshold) ? threshold : undefined,
        ],
      };
    }
  }
  return (
    best ?? {
      encoding,
      thresholdBytes: undefined,
      misses: [],
      meanLossPct: 0,
      between: [undefined, undefined],
    }
  );
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

// ---------------------------------------------------------------------------------------------
// Markdown

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function bytes(value: number | undefined): string {
  if (value === undefined) return '–';
  if (value >= 1024 * 1024)
    return `${(value / (1024 * 1024)).toFixed(value >= 10 * 1024 * 1024 ? 0 : 1)} MiB`;
  return `${Math.round(value / 1024)} KiB`;
}

/** The threads/async cell: the median ratio (min–max), bold with a mark where threads clearly win. */
function crossoverCell(verdict: ScenarioVerdict | undefined): string {
  const value = verdict?.threadsOverAsync;
  if (value === undefined) return '–';
  const text = common.ratio(value);
  if (value.median > CLEAR_WIN) return `**${text}** T`;
  if (value.median < 1 / CLEAR_WIN) return `${text} A`;
  return text;
}

export function crossoverTable(doc: BenchDocument, encoding: Encoding): string[] {
  const lines: string[] = [];
  const find = (dimensions: number, n: number): ScenarioVerdict | undefined =>
    doc.verdicts.find((verdict) => verdict.scenario === scenarioId(dimensions, n, encoding));
  const dims = DIMENSIONS.filter((d) => INPUTS_PER_REQUEST.some((n) => find(d, n)));
  if (dims.length === 0) return lines;
  const ns = INPUTS_PER_REQUEST.filter((n) => dims.some((d) => find(d, n)));
  lines.push(`| ${encoding}: dims \\ inputs per request | ${ns.map((n) => `${n}`).join(' | ')} |`);
  lines.push(`|---|${ns.map(() => '---:').join('|')}|`);
  for (const d of dims) {
    lines.push(
      `| ${d} | ${ns.map((n) => `${crossoverCell(find(d, n))} <br>${bytes(n * d * 4)}`).join(' | ')} |`,
    );
  }
  return lines;
}

function scenarioTitle(scenario: EmbedScenario): string {
  return `${scenario.dimensions} dims × ${scenario.inputsPerRequest} inputs per request, ${scenario.encoding} — ${integer.format(scenario.vectors)} vectors (${integer.format(scenario.requests)} requests, +${integer.format(scenario.warmupRequests)} warm-up) per run, C = ${scenario.concurrency}`;
}

export const HOW_TO_READ = `## How to read this

- **Setup.** Closed loop: each contender keeps C embedding requests in flight until it has
  completed the run's request count; every request carries the cell's number of inputs (short
  texts from a fixed pool of 512) and asks for the cell's \`dimensions\`. Every contender is its own
  process; the server is another, restarted for every run. Client and server share 2 cores:
  **compare ratios within one run, not absolute numbers across runs or machines.**
- **Encodings.** *base64* cells: undici-raw asks for base64 and decodes each vector with
  \`Buffer.from\` into a Float32Array; openai-sdk omits \`encoding_format\`, its default path (it
  asks for base64 and converts each vector to a \`number[]\`); Volley asks for base64 and decodes
  into one Float32Array matrix per response in the worker. *float* cells: the peers ask for
  \`encoding_format: "float"\` and keep the parsed \`number[]\`s; Volley has no option to ask for
  floats, so these cells run against a simulator that ignores \`encoding_format\` and always answers
  float JSON (sim-server.mjs; the same bytes the peers get), and Volley's worker decodes the float
  JSON into its Float32Array matrix (checked: \`serverSentFloats\` on every response).
- **Order.** Repetitions are rep-major (every contender once per cell, then again), with the
  contender order rotated each rep. Volley's \`threads\` and \`auto\` contenders wait for their
  worker threads to start before warming up, so thread start-up is not in the window, and every
  Volley contender sends one request before its warm-up (so \`auto\` knows the server's encoding).
- **vectors/s** = vectors received and checked / wall time of the measured window (warm-up
  excluded). Median over the reps, with the min–max spread.
- **×** columns: each run's vectors/s divided by that peer's run in the same rep and cell, then the
  median (min–max) of those paired ratios. **threads / async** likewise pairs volley-threads with
  volley-async; in the crossover table, **bold … T** marks threads winning by more than
  ${Math.round((CLEAR_WIN - 1) * 100)}%, **A** async winning by more than that.
- **client CPU ms/1k vectors** = the contender process's user+system CPU (all its threads, worker
  threads included) over the window, per 1,000 vectors.
- **server CPU ms/1k vectors** = the simulator's utime+stime (/proc, 10 ms ticks) per 1,000 vectors.
  The simulator formats each vector once and then serves it from a cache.
- **p50 / p99** = per-request latency in ms (Volley: wall time of each \`embed\` call).
- **loop p99** = event-loop delay p99 of the client's main thread (\`monitorEventLoopDelay\`, 10 ms
  resolution): what decoding on the main loop does to everything else the application runs there.
- **bound** = \`client\` (client ≥ 0.85 cores), \`server\` (server ≥ 0.85 cores), else \`shared\`.
- **Checks.** Every response: vector count and dimensions of every vector. After the window (not
  timed): the first and last vector of the last response equal, element by element as float32,
  \`simulatedEmbedding(input, model, dims)\`. A failed check fails the run.
- **noisy** = other processes used more than ${common.NOISY_OTHER_CORES} cores during the window (or the
  hypervisor stole that much); such a run is repeated once and the repeat replaces it.
- **Mode rule** = "threads when inputs × dimensions × 4 ≥ T bytes" (the decoded float32 size of a
  response), with T the cell size that loses the least throughput against always picking the
  faster mode per cell.
`;

export function renderMarkdown(doc: BenchDocument): string {
  const lines = common.preamble(doc, `Embeddings throughput, ${doc.startedAt}`);
  if (doc.config.quick) {
    lines.push('*Quick mode: a smoke test, not a measurement.*');
    lines.push('');
  }

  const head = doc.verdicts.find((verdict) => verdict.scenario === 'd1536-n64-base64');
  if (head !== undefined) {
    lines.push(
      `**1536 dims × 64 inputs, base64:** threads / async ${common.ratio(head.threadsOverAsync)}; ` +
        `best mode \`${head.bestMode ?? '–'}\`, ${common.fmt(head.bestVectorsPerSec)} vectors/s, ` +
        `${common.ratio(head.bestOverOpenaiSdk)}× openai-sdk (target ≥ 3), ${common.ratio(head.bestOverUndiciRaw)}× undici-raw.`,
    );
    lines.push('');
  }

  lines.push('## Crossover: volley-threads / volley-async (vectors/s, paired per rep)');
  lines.push('');
  lines.push(
    'Cells: median ratio (min–max); under it the decoded size of one response (inputs × dims × 4 bytes). ' +
      `**bold … T** = threads faster by more than ${Math.round((CLEAR_WIN - 1) * 100)}%, A = async faster by more than that.`,
  );
  lines.push('');
  for (const encoding of ENCODINGS) {
    const table = crossoverTable(doc, encoding);
    if (table.length === 0) continue;
    lines.push(...table);
    lines.push('');
  }

  if (doc.rules.length > 0) {
    lines.push('## Choosing the mode from the workload');
    lines.push('');
    lines.push(
      '| responses | rule: threads when inputs × dims × 4 ≥ | boundary between | mean loss vs best mode per cell | cells where the rule picks the slower mode |',
    );
    lines.push('|---|---:|---|---:|---|');
    for (const rule of doc.rules) {
      lines.push(
        `| ${rule.encoding === 'any' ? 'both encodings' : rule.encoding} | ${rule.thresholdBytes === undefined ? 'never' : `${bytes(rule.thresholdBytes)} (${integer.format(rule.thresholdBytes)} B)`} | ${bytes(rule.between[0])} … ${bytes(rule.between[1])} | ${rule.meanLossPct.toFixed(1)}% | ${rule.misses.map((miss) => `${miss.scenario} (−${miss.lossPct}%)`).join(', ') || 'none'} |`,
      );
    }
    lines.push('');
  }

  lines.push('## Per cell: Volley against the peers');
  lines.push('');
  lines.push(
    '| cell | decoded / wire bytes per response | threads / async | best Volley mode | best vectors/s | best × openai-sdk | best × undici-raw |',
  );
  lines.push('|---|---|---:|---|---:|---:|---:|');
  for (const verdict of doc.verdicts) {
    lines.push(
      `| ${verdict.scenario} | ${bytes(verdict.decodedBytesPerResponse)} / ${bytes(verdict.wireBytesPerResponse)} | ${common.ratio(verdict.threadsOverAsync)} | ${verdict.bestMode ?? '–'} | ${common.fmt(verdict.bestVectorsPerSec)} | ${common.ratio(verdict.bestOverOpenaiSdk)} | ${common.ratio(verdict.bestOverUndiciRaw)} |`,
    );
  }
  lines.push('');

  lines.push(
    ...common.scenarioTables(
      doc.config.scenarios,
      doc.summaries,
      scenarioTitle,
      [
        '| contender | vectors/s (median) | min–max | × undici-raw | × openai-sdk | client CPU ms/1k vectors | client cores | server CPU ms/1k vectors | p50 ms | p99 ms | loop p99 ms | RSS MB | bound | errors | runs |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|',
      ],
      (row) =>
        `| ${row.contender} | ${common.fmt(row.vectorsPerSec?.median)} | ${common.spread(row.vectorsPerSec)} | ${common.ratio(row.ratioToUndiciRaw)} | ${common.ratio(row.ratioToOpenaiSdk)} | ${common.fmt(row.cpuMsPer1kVectors?.median, 1)} | ${common.fmt(row.clientCores?.median, 2)} | ${common.fmt(row.serverCpuMsPer1kVectors?.median, 1)} | ${common.fmt(row.latencyP50Ms?.median, 1)} | ${common.fmt(row.latencyP99Ms?.median, 1)} | ${common.fmt(row.eventLoopDelayP99Ms?.median, 1)} | ${common.fmt(row.maxRssMb?.median)} | ${row.bound ?? '–'} | ${common.fmt(row.errors)} | ${common.runsCell(row)} |`,
    ),
    ...common.failureLines(doc.runs),
  );
  lines.push(HOW_TO_READ);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// HTML: the Markdown's tables plus bar charts.

const CHARTS = {
  width: 560,
  label: 120,
  barHeight: 18,
  gap: 6,
  top: 20,
  valueRoom: 110,
  textY: 13,
  colors: {
    'undici-raw': '#4c78a8',
    'openai-sdk': '#e45756',
    'volley-async': '#54a24b',
    'volley-threads': '#2f7d32',
    'volley-auto': '#b279a2',
    'volley-threads-1': '#8fbf7f',
  },
  fallbackColor: '#999',
};

export function renderHtml(doc: BenchDocument, markdown: string): string {
  return common.renderPage({
    title: `Volley embeddings ${doc.startedAt}`,
    markdown,
    scenarios: doc.config.scenarios,
    summaries: doc.summaries,
    heading: (scenario) => `<h3>${common.escapeHtml(scenario.id)}</h3>`,
    charts: (rows) =>
      common.rateAndCpuCharts(
        CHARTS,
        rows,
        ['vectors/s (median, whisker = min–max)', (row) => row.vectorsPerSec, '/s'],
        ['client CPU ms per 1,000 vectors (lower is better)', (row) => row.cpuMsPer1kVectors, 'ms'],
      ),
    css: 'h3{margin-bottom:0}',
  });
}

/** Recomputes everything derived from the runs (summaries, verdicts, rules). */
export function derive(doc: BenchDocument): void {
  doc.summaries = summarize(doc.runs, doc.config.scenarios, doc.config.contenders);
  doc.verdicts = verdicts(doc.runs, doc.summaries, doc.config.scenarios, doc.wireBytes);
  const encodings = ENCODINGS.filter((encoding) =>
    doc.verdicts.some((verdict) => verdict.encoding === encoding && verdict.threadsOverAsync),
  );
  doc.rules = [
    ...encodings.map((encoding) => fitRule(doc.verdicts, encoding)),
    ...(encodings.length > 1 ? [fitRule(doc.verdicts, 'any')] : []),
  ];
}

common.rerenderWhenRun<BenchDocument>(
  import.meta.url,
  'embeddings/report.ts',
  derive,
  renderMarkdown,
  renderHtml,
);
