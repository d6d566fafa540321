/**
 * Summaries of one embeddings matrix (median and min-max per contender x scenario, ratios paired
 * within a repetition), the threads/async crossover table, a mode-choice rule fitted to the data,
 * and the Markdown and HTML renderings.
 *
 * Run directly to re-render an existing result file:
 *   node --import tsx embeddings/report.ts results/embeddings-<date>-<sha>.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { MachineInfo } from '../throughput/proc-stats.js';
import type { Stat } from '../throughput/report.js';
import {
  escapeHtml,
  fmt,
  mostCommon,
  NOISY_OTHER_CORES,
  ratio,
  spread,
  stat,
} from '../throughput/report.js';
import type { EmbedContenderResult } from './harness.js';
import type { EmbedScenario, Encoding } from './scenarios.js';
import { DIMENSIONS, ENCODINGS, INPUTS_PER_REQUEST, scenarioId } from './scenarios.js';

export const SCHEMA = 'volley-bench-embeddings/1';

/** A threads/async ratio above this is a clear threads win (and below its inverse, an async win). */
export const CLEAR_WIN = 1.1;

export type Bound = 'client' | 'server' | 'shared';

export interface RunRecord {
  rep: number;
  /** Position of this contender within its rep and scenario (order is rotated every rep). */
  position: number;
  scenario: string;
  contender: string;
  ok: boolean;
  error?: string;
  result?: EmbedContenderResult;
  server?: { cpuMs: number; cores: number; cpuMsPer1kVectors: number };
  system?: { busyCores: number; stealCores: number; otherCores: number };
  noisy: boolean;
  bound?: Bound;
  /** A noisy run that was repeated right away: kept for the record, left out of the summaries. */
  replaced?: boolean;
  quietWaitMs: number;
  loadAverage1m: number;
  startedAt: string;
}

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

export interface BenchDocument {
  schema: typeof SCHEMA;
  command: string;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: MachineInfo & { loadAverageBefore: number[]; loadAverageAfter: number[] };
  versions: Record<string, string>;
  config: {
    reps: number;
    quick: boolean;
    contenders: string[];
    scenarios: EmbedScenario[];
    noisyOtherCores: number;
    retryNoisy: number;
    quietWaitMaxMs: number;
  };
  /** Bytes of one response body on the wire, per scenario (one probe request each). */
  wireBytes: Record<string, number>;
  runs: RunRecord[];
  summaries: Summary[];
  verdicts: ScenarioVerdict[];
  rules: ModeRule[];
}

function counted(runs: readonly RunRecord[]): RunRecord[] {
  return runs.filter((run) => run.ok && run.replaced !== true && run.result !== undefined);
}

/** Each run of `contender` divided by `reference`'s run in the same rep and scenario. */
function pairedRatios(
  all: readonly RunRecord[],
  scenario: string,
  contender: string,
  reference: string,
): number[] {
  const ratios: number[] = [];
  const mine = counted(all).filter(
    (run) => run.scenario === scenario && run.contender === contender,
  );
  for (const run of mine) {
    const ref = counted(all).find(
      (other) =>
        other.contender === reference && other.scenario === scenario && other.rep === run.rep,
    );
    const a = run.result?.vectorsPerSec;
    const b = ref?.result?.vectorsPerSec;
    if (a !== undefined && b !== undefined && b > 0) ratios.push(a / b);
  }
  return ratios;
}

export function summarize(
  runs: readonly RunRecord[],
  scenarios: readonly EmbedScenario[],
  contenders: readonly string[],
): Summary[] {
  const summaries: Summary[] = [];
  for (const scenario of scenarios) {
    for (const contender of contenders) {
      const all = runs.filter((run) => run.scenario === scenario.id && run.contender === contender);
      if (all.length === 0) continue;
      const kept = all.filter((run) => run.replaced !== true);
      const ok = counted(kept);
      const pick = (get: (run: RunRecord) => number | undefined): Stat | undefined =>
        stat(ok.map(get).filter((value): value is number => value !== undefined));
      summaries.push({
        scenario: scenario.id,
        contender,
        runs: kept.length,
        failedRuns: kept.filter((run) => !run.ok).length,
        noisyRuns: ok.filter((run) => run.noisy).length,
        replacedRuns: all.length - kept.length,
        errors: ok.reduce((sum, run) => sum + (run.result?.errors ?? 0), 0),
        vectorsPerSec: pick((run) => run.result?.vectorsPerSec),
        ratioToUndiciRaw: stat(pairedRatios(runs, scenario.id, contender, 'undici-raw')),
        ratioToOpenaiSdk: stat(pairedRatios(runs, scenario.id, contender, 'openai-sdk')),
        cpuMsPer1kVectors: pick((run) => run.result?.cpuMsPer1kVectors),
        clientCores: pick((run) => run.result?.clientCores),
        serverCpuMsPer1kVectors: pick((run) => run.server?.cpuMsPer1kVectors),
        serverCores: pick((run) => run.server?.cores),
        latencyP50Ms: pick((run) => run.result?.latencyP50Ms),
        latencyP99Ms: pick((run) => run.result?.latencyP99Ms),
        eventLoopDelayP99Ms: pick((run) => run.result?.eventLoopDelayP99Ms),
        maxRssMb: pick((run) => run.result?.maxRssMb),
        bound: mostCommon(
          ok.map((run) => run.bound).filter((bound): bound is Bound => bound !== undefined),
        ),
      });
    }
  }
  return summaries;
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
      threadsOverAsync: stat(pairedRatios(runs, scenario.id, 'volley-threads', 'volley-async')),
      bestMode: best,
      bestVectorsPerSec: volley?.vectorsPerSec?.median,
      bestOverOpenaiSdk:
        best === undefined ? undefined : stat(pairedRatios(runs, scenario.id, best, 'openai-sdk')),
      bestOverUndiciRaw:
        best === undefined ? undefined : stat(pairedRatios(runs, scenario.id, best, 'undici-raw')),
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

function runsCell(summary: Summary): string {
  const notes: string[] = [];
  if (summary.noisyRuns > 0) notes.push(`${summary.noisyRuns} noisy`);
  if (summary.failedRuns > 0) notes.push(`${summary.failedRuns} failed`);
  if (summary.replacedRuns > 0) notes.push(`${summary.replacedRuns} noisy re-run`);
  return notes.length > 0 ? `${summary.runs} (${notes.join(', ')})` : String(summary.runs);
}

/** The threads/async cell: the median ratio (min–max), bold with a mark where threads clearly win. */
function crossoverCell(verdict: ScenarioVerdict | undefined): string {
  const value = verdict?.threadsOverAsync;
  if (value === undefined) return '–';
  const text = ratio(value);
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
  JSON into its Float32Array matrix (checked: \`serverSentFloats\` on every response). That server
  also flattens the simulator's cached float strings once (they are ropes as built, and walking
  them made the server the bottleneck of every float cell); see sim-server.mjs.
- **Order.** Repetitions are rep-major (every contender once per cell, then again), with the
  contender order rotated each rep.
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
- **noisy** = other processes used more than ${NOISY_OTHER_CORES} cores during the window (or the
  hypervisor stole that much); such a run is repeated once and the repeat replaces it.
- **Mode rule** = "threads when inputs × dimensions × 4 ≥ T bytes" (the decoded float32 size of a
  response), with T the cell size that loses the least throughput against always picking the
  faster mode per cell.
`;

export function renderMarkdown(doc: BenchDocument): string {
  const { machine } = doc;
  const lines: string[] = [];
  lines.push(`# Embeddings throughput, ${doc.startedAt}`);
  lines.push('');
  lines.push(
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.totalMemGiB} GiB, Node ${machine.node}, ${machine.platform} ${machine.kernel}. ` +
      `Git ${machine.git.short}${machine.git.dirty ? ' (dirty worktree)' : ''}. ` +
      `Load average before ${machine.loadAverageBefore.join(' / ')}, after ${machine.loadAverageAfter.join(' / ')}. ` +
      `${doc.config.reps} rep(s)${doc.config.quick ? ', quick mode' : ''}, ${Math.round(doc.durationS)} s in total.`,
  );
  lines.push('');
  lines.push(
    `Versions: ${Object.entries(doc.versions)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}.`,
  );
  lines.push('');
  lines.push(`Command: \`${doc.command}\``);
  lines.push('');
  if (doc.config.quick) {
    lines.push('*Quick mode: a smoke test, not a measurement.*');
    lines.push('');
  }

  const head = doc.verdicts.find((verdict) => verdict.scenario === 'd1536-n64-base64');
  if (head !== undefined) {
    lines.push(
      `**1536 dims × 64 inputs, base64:** threads / async ${ratio(head.threadsOverAsync)}; ` +
        `best mode \`${head.bestMode ?? '–'}\`, ${fmt(head.bestVectorsPerSec)} vectors/s, ` +
        `${ratio(head.bestOverOpenaiSdk)}× openai-sdk (target ≥ 3), ${ratio(head.bestOverUndiciRaw)}× undici-raw.`,
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
      `| ${verdict.scenario} | ${bytes(verdict.decodedBytesPerResponse)} / ${bytes(verdict.wireBytesPerResponse)} | ${ratio(verdict.threadsOverAsync)} | ${verdict.bestMode ?? '–'} | ${fmt(verdict.bestVectorsPerSec)} | ${ratio(verdict.bestOverOpenaiSdk)} | ${ratio(verdict.bestOverUndiciRaw)} |`,
    );
  }
  lines.push('');

  for (const scenario of doc.config.scenarios) {
    const rows = doc.summaries.filter((summary) => summary.scenario === scenario.id);
    if (rows.length === 0) continue;
    lines.push(`## ${scenarioTitle(scenario)}`);
    lines.push('');
    lines.push(
      '| contender | vectors/s (median) | min–max | × undici-raw | × openai-sdk | client CPU ms/1k vectors | client cores | server CPU ms/1k vectors | p50 ms | p99 ms | loop p99 ms | RSS MB | bound | errors | runs |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|');
    for (const row of rows) {
      lines.push(
        `| ${row.contender} | ${fmt(row.vectorsPerSec?.median)} | ${spread(row.vectorsPerSec)} | ${ratio(row.ratioToUndiciRaw)} | ${ratio(row.ratioToOpenaiSdk)} | ${fmt(row.cpuMsPer1kVectors?.median, 1)} | ${fmt(row.clientCores?.median, 2)} | ${fmt(row.serverCpuMsPer1kVectors?.median, 1)} | ${fmt(row.latencyP50Ms?.median, 1)} | ${fmt(row.latencyP99Ms?.median, 1)} | ${fmt(row.eventLoopDelayP99Ms?.median, 1)} | ${fmt(row.maxRssMb?.median)} | ${row.bound ?? '–'} | ${fmt(row.errors)} | ${runsCell(row)} |`,
      );
    }
    lines.push('');
  }

  const failed = doc.runs.filter((run) => !run.ok && run.replaced !== true);
  const errored = doc.runs.filter(
    (run) => run.ok && run.replaced !== true && (run.result?.errors ?? 0) > 0,
  );
  if (failed.length > 0 || errored.length > 0) {
    lines.push('## Failures and errors');
    lines.push('');
    for (const run of failed)
      lines.push(
        `- rep ${run.rep} ${run.scenario} ${run.contender}: run failed: ${run.error ?? '?'}`,
      );
    for (const run of errored)
      lines.push(
        `- rep ${run.rep} ${run.scenario} ${run.contender}: ${run.result?.errors} errors, first: ${run.result?.firstError ?? '?'}`,
      );
    lines.push('');
  }
  lines.push(HOW_TO_READ);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// HTML: the Markdown's tables plus bar charts, inline SVG only, so the file opens offline.

const COLORS: Record<string, string> = {
  'undici-raw': '#4c78a8',
  'openai-sdk': '#e45756',
  'volley-async': '#54a24b',
  'volley-threads': '#2f7d32',
  'volley-auto': '#b279a2',
};

function barChart(
  title: string,
  rows: readonly Summary[],
  get: (row: Summary) => Stat | undefined,
  unit: string,
): string {
  const width = 560;
  const label = 120;
  const barHeight = 18;
  const height = rows.length * (barHeight + 6) + 26;
  const max = Math.max(1, ...rows.map((row) => get(row)?.max ?? 0));
  const scale = (value: number): number =>
    Math.round(((width - label - 110) * value * 10) / max) / 10;
  const bars = rows
    .map((row, index) => {
      const value = get(row);
      const y = 20 + index * (barHeight + 6);
      if (value === undefined) return '';
      const whisker =
        value.n > 1
          ? `<line x1="${label + scale(value.min)}" x2="${label + scale(value.max)}" y1="${y + barHeight / 2}" y2="${y + barHeight / 2}" stroke="#222" stroke-width="1.5"/>`
          : '';
      return `<text x="${label - 6}" y="${y + 13}" text-anchor="end">${escapeHtml(row.contender)}</text><rect x="${label}" y="${y}" width="${scale(value.median)}" height="${barHeight}" fill="${COLORS[row.contender] ?? '#999'}"/>${whisker}<text x="${label + scale(value.max) + 6}" y="${y + 13}">${fmt(value.median)} ${unit}</text>`;
    })
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${bars}</svg></figure>`;
}

/** Minimal Markdown -> HTML for what renderMarkdown writes: headings, paragraphs, lists, tables. */
function markdownToHtml(markdown: string): string {
  const inline = (text: string): string =>
    escapeHtml(text)
      .replace(/&lt;br&gt;/g, '<br>')
      .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
      .replace(/`(.+?)`/g, '<code>$1</code>')
      .replace(/\*(.+?)\*/g, '<em>$1</em>');
  const cells = (row: string): string[] =>
    row
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim().replace(/\\\|/g, '|').replace(/\\\\/g, '\\'));
  const out: string[] = [];
  const lines = markdown.split('\n');
  let inList = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (inList && !line.startsWith('- ') && !line.startsWith('  ')) {
      out.push('</ul>');
      inList = false;
    }
    if (line.startsWith('|')) {
      const table: string[] = [];
      while (i < lines.length && (lines[i] ?? '').startsWith('|')) table.push(lines[i++] ?? '');
      i--;
      const [head = '', , ...body] = table;
      out.push(
        `<table><thead><tr>${cells(head)
          .map((cell) => `<th>${inline(cell)}</th>`)
          .join('')}</tr></thead><tbody>${body
          .map(
            (row) =>
              `<tr>${cells(row)
                .map((cell) => `<td>${inline(cell)}</td>`)
                .join('')}</tr>`,
          )
          .join('')}</tbody></table>`,
      );
    } else if (line.startsWith('## ')) out.push(`<h2>${inline(line.slice(3))}</h2>`);
    else if (line.startsWith('# ')) out.push(`<h1>${inline(line.slice(2))}</h1>`);
    else if (line.startsWith('- ')) {
      if (!inList) out.push('<ul>');
      inList = true;
      out.push(`<li>${inline(line.slice(2))}`);
    } else if (line.startsWith('  ') && inList) out.push(` ${inline(line.trim())}`);
    else if (line.trim() !== '') out.push(`<p>${inline(line)}</p>`);
  }
  if (inList) out.push('</ul>');
  return out.join('\n');
}

export function renderHtml(doc: BenchDocument, markdown: string): string {
  const charts = doc.config.scenarios
    .map((scenario) => {
      const rows = doc.summaries.filter((summary) => summary.scenario === scenario.id);
      if (rows.length === 0) return '';
      return `<section><h3>${escapeHtml(scenario.id)}</h3><div class="charts">${barChart('vectors/s (median, whisker = min–max)', rows, (row) => row.vectorsPerSec, '/s')}${barChart('client CPU ms per 1,000 vectors (lower is better)', rows, (row) => row.cpuMsPer1kVectors, 'ms')}</div></section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Volley embeddings ${escapeHtml(doc.startedAt)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:0.5rem 1rem 0.5rem 0}figcaption{font-weight:600;font-size:13px}
.charts{display:flex;flex-wrap:wrap}code{background:#f3f3f3;padding:0 3px}h3{margin-bottom:0}
</style></head><body>
${markdownToHtml(markdown)}
<h1>Charts</h1>
${charts}
</body></html>
`;
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

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (file === undefined)
    throw new Error('usage: node --import tsx embeddings/report.ts <result.json>');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as BenchDocument;
  derive(doc);
  const markdown = renderMarkdown(doc);
  writeFileSync(file.replace(/\.json$/, '.md'), markdown);
  writeFileSync(file.replace(/\.json$/, '.html'), renderHtml(doc, markdown));
  process.stdout.write(`${markdown}\n`);
}
