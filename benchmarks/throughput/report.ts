/**
 * Turns the runs of one matrix into summaries (median and min-max per contender x scenario, ratios
 * paired within a repetition) and renders them as Markdown and as a self-contained HTML page.
 *
 * Run directly to re-render an existing result file:
 *   node --import tsx throughput/report.ts results/throughput-<date>-<sha>.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { ContenderResult } from './harness.js';
import type { MachineInfo } from './proc-stats.js';
import type { Scenario } from './scenarios.js';

export const SCHEMA = 'volley-bench-throughput/1';

/** Other processes (not the client, not the server) using more than this many cores make a run noisy. */
export const NOISY_OTHER_CORES = 0.35;

export type Bound = 'latency' | 'client' | 'server' | 'shared';

export interface RunRecord {
  rep: number;
  /** Position of this contender within its rep and scenario (order is rotated every rep). */
  position: number;
  scenario: string;
  contender: string;
  ok: boolean;
  error?: string;
  result?: ContenderResult;
  server?: { cpuMs: number; cores: number; cpuMsPer1k: number };
  system?: { busyCores: number; stealCores: number; otherCores: number };
  noisy: boolean;
  bound?: Bound;
  /** A noisy run that was repeated right away: kept for the record, left out of the summaries. */
  replaced?: boolean;
  /** Time spent waiting for the machine to go quiet before this run. */
  quietWaitMs: number;
  loadAverage1m: number;
  startedAt: string;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

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
    scenarios: Scenario[];
    noisyOtherCores: number;
    retryNoisy: number;
  };
  runs: RunRecord[];
  summaries: Summary[];
}

export function stat(values: readonly number[]): Stat | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] ?? 0)
      : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { median, min: sorted[0] ?? 0, max: sorted[sorted.length - 1] ?? 0, n: sorted.length };
}

export function mostCommon<T>(values: readonly T[]): T | undefined {
  const counts = new Map<T, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best: T | undefined;
  let bestCount = 0;
  for (const [value, count] of counts) {
    if (count > bestCount) {
      best = value;
      bestCount = count;
    }
  }
  return best;
}

function pairedRatios(
  runs: readonly RunRecord[],
  all: readonly RunRecord[],
  reference: string,
): number[] {
  const ratios: number[] = [];
  for (const run of runs) {
    const ref = all.find(
      (other) =>
        other.ok &&
        other.replaced !== true &&
        other.contender === reference &&
        other.scenario === run.scenario &&
        other.rep === run.rep,
    );
    if (run.result && ref?.result && ref.result.reqPerSec > 0)
      ratios.push(run.result.reqPerSec / ref.result.reqPerSec);
  }
  return ratios;
}

export function summarize(
  runs: readonly RunRecord[],
  scenarios: readonly Scenario[],
  contenders: readonly string[],
): Summary[] {
  const summaries: Summary[] = [];
  for (const scenario of scenarios) {
    for (const contender of contenders) {
      const all = runs.filter((run) => run.scenario === scenario.id && run.contender === contender);
      const mine = all.filter((run) => run.replaced !== true);
      if (mine.length === 0) continue;
      const ok = mine.filter((run) => run.ok && run.result !== undefined);
      const pick = (get: (run: RunRecord) => number | undefined): Stat | undefined =>
        stat(ok.map(get).filter((value): value is number => value !== undefined));
      summaries.push({
        scenario: scenario.id,
        contender,
        runs: mine.length,
        failedRuns: mine.length - ok.length,
        noisyRuns: mine.filter((run) => run.noisy).length,
        replacedRuns: all.length - mine.length,
        errors: ok.reduce((sum, run) => sum + (run.result?.errors ?? 0), 0),
        reqPerSec: pick((run) => run.result?.reqPerSec),
        ratioToUndiciRaw: stat(pairedRatios(ok, runs, 'undici-raw')),
        ratioToAutocannon: stat(pairedRatios(ok, runs, 'autocannon')),
        cpuMsPer1k: pick((run) => run.result?.cpuMsPer1k),
        clientCores: pick((run) => run.result?.clientCores),
        serverCpuMsPer1k: pick((run) => run.server?.cpuMsPer1k),
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

// ---------------------------------------------------------------------------------------------
// Markdown

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  return digits === 0 ? integer.format(value) : value.toFixed(digits);
}

export function spread(value: Stat | undefined, digits = 0): string {
  if (value === undefined) return '–';
  return value.n > 1 ? `${fmt(value.min, digits)}–${fmt(value.max, digits)}` : '–';
}

export function ratio(value: Stat | undefined): string {
  if (value === undefined) return '–';
  const range = value.n > 1 ? ` (${value.min.toFixed(2)}–${value.max.toFixed(2)})` : '';
  return `${value.median.toFixed(2)}${range}`;
}

function runsCell(summary: Summary): string {
  const notes: string[] = [];
  if (summary.noisyRuns > 0) notes.push(`${summary.noisyRuns} noisy`);
  if (summary.failedRuns > 0) notes.push(`${summary.failedRuns} failed`);
  if (summary.replacedRuns > 0) notes.push(`${summary.replacedRuns} noisy re-run`);
  return notes.length > 0 ? `${summary.runs} (${notes.join(', ')})` : String(summary.runs);
}

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
  const sdk = doc.runs.filter(
    (run) =>
      run.ok &&
      run.replaced !== true &&
      run.scenario === scenarioId &&
      run.contender === volley.contender,
  );
  const toSdk = stat(pairedRatios(sdk, doc.runs, 'openai-sdk'));
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
  run's request count. Every contender is its own process; the server (\`volley sim\`) is another,
  restarted for every run. Client and server share the same cores, so a faster client also means
  a busier server: **compare ratios within one run, not absolute numbers across runs or machines.**
- **Order.** Repetitions are rep-major (every contender once, then again), with the contender
  order rotated each rep, so slow drift of the machine hits every contender alike.
- **req/s** = completed requests / wall time of the measured window (warm-up excluded). Median over
  the reps, with the min–max spread.
- **× undici-raw**, **× autocannon**: each run's req/s divided by that peer's run in the same rep
  and scenario, then the median (min–max) of those paired ratios. autocannon replays fixed bytes
  and parses nothing: it is the raw HTTP ceiling. undici-raw is one undici Pool with C lanes, the
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
- **noisy** = other processes on the machine used more than ${NOISY_OTHER_CORES} cores during the window
  (/proc/stat busy minus client minus server), or the hypervisor stole that much. Before every
  run the runner waits (up to 10 s) for the machine to go quiet; a noisy run is repeated once
  right away and the repeat replaces it ("noisy re-run" in the runs column). A run still noisy
  after that stays in the medians and is counted as noisy; the JSON file holds every run.
`;

export function renderMarkdown(doc: BenchDocument): string {
  const { machine } = doc;
  const lines: string[] = [];
  lines.push(`# Throughput: short chat, ${doc.startedAt}`);
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

  const top = headline(doc);
  if (top !== undefined) {
    lines.push(
      `**Volley at ${top.scenario}:** best mode \`${top.best}\`, ${fmt(top.reqPerSec)} req/s; ` +
        `${fmt(top.ratioToUndiciRaw, 2)}× undici-raw (target ≥ 0.70), ${fmt(top.ratioToOpenaiSdk, 2)}× openai-sdk (target ≥ 5).` +
        // Quick runs are too short to warm the JIT: their ratios must not be read as results.
        (doc.config.quick ? ' *Quick mode: a smoke test, not a measurement.*' : ''),
    );
    lines.push('');
  }

  for (const scenario of doc.config.scenarios) {
    const rows = doc.summaries.filter((summary) => summary.scenario === scenario.id);
    if (rows.length === 0) continue;
    lines.push(`## ${scenarioTitle(scenario)}`);
    lines.push('');
    lines.push(
      '| contender | req/s (median) | min–max | × undici-raw | × autocannon | client CPU ms/1k req | client cores | server CPU ms/1k req | p50 ms | p99 ms | loop p99 ms | bound | errors | runs |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|');
    for (const row of rows) {
      lines.push(
        `| ${row.contender} | ${fmt(row.reqPerSec?.median)} | ${spread(row.reqPerSec)} | ${ratio(row.ratioToUndiciRaw)} | ${ratio(row.ratioToAutocannon)} | ${fmt(row.cpuMsPer1k?.median)} | ${fmt(row.clientCores?.median, 2)} | ${fmt(row.serverCpuMsPer1k?.median)} | ${fmt(row.latencyP50Ms?.median, 1)} | ${fmt(row.latencyP99Ms?.median, 1)} | ${fmt(row.eventLoopDelayP99Ms?.median, 1)} | ${row.bound ?? '–'} | ${fmt(row.errors)} | ${runsCell(row)} |`,
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
    for (const run of errored) {
      lines.push(
        `- rep ${run.rep} ${run.scenario} ${run.contender}: ${run.result?.errors} errors, first: ${run.result?.firstError ?? '?'}`,
      );
    }
    lines.push('');
  }
  lines.push(HOW_TO_READ);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// HTML: inline SVG only, no scripts or external assets, so the file opens offline anywhere.

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[char] ?? char,
  );
}

const COLORS: Record<string, string> = {
  autocannon: '#888888',
  'undici-raw': '#4c78a8',
  'fetch-limiter': '#f58518',
  'openai-sdk': '#e45756',
  'volley-async': '#54a24b',
  'volley-threads': '#2f7d32',
};

/** Horizontal bars (median) with a min-max whisker, one per contender. */
function barChart(
  title: string,
  rows: readonly Summary[],
  get: (row: Summary) => Stat | undefined,
  unit: string,
): string {
  const width = 640;
  const label = 130;
  const barHeight = 22;
  const height = rows.length * (barHeight + 8) + 30;
  const max = Math.max(1, ...rows.map((row) => get(row)?.max ?? 0));
  const scale = (value: number): number =>
    Math.round(((width - label - 90) * value * 10) / max) / 10;
  const bars = rows
    .map((row, index) => {
      const value = get(row);
      const y = 24 + index * (barHeight + 8);
      if (value === undefined) return '';
      const color = COLORS[row.contender] ?? '#999999';
      const whisker =
        value.n > 1
          ? `<line x1="${label + scale(value.min)}" x2="${label + scale(value.max)}" y1="${y + barHeight / 2}" y2="${y + barHeight / 2}" stroke="#222" stroke-width="1.5"/>`
          : '';
      return `<text x="${label - 6}" y="${y + 15}" text-anchor="end">${escapeHtml(row.contender)}</text><rect x="${label}" y="${y}" width="${scale(value.median)}" height="${barHeight}" fill="${color}"/>${whisker}<text x="${label + scale(value.max) + 6}" y="${y + 15}">${fmt(value.median)} ${unit}</text>`;
    })
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${bars}</svg></figure>`;
}

/** Minimal Markdown table -> HTML, enough for the tables this module writes. */
function markdownToHtml(markdown: string): string {
  const out: string[] = [];
  let inList = false;
  const inline = (text: string): string =>
    escapeHtml(text)
      .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
      .replace(/`(.+?)`/g, '<code>$1</code>')
      .replace(/\*(.+?)\*/g, '<em>$1</em>');
  const lines = markdown.split('\n');
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
      const cells = (row: string): string[] =>
        row
          .slice(1, -1)
          .split('|')
          .map((cell) => cell.trim());
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
    } else if (line.startsWith('## ')) {
      out.push(`<h2>${inline(line.slice(3))}</h2>`);
    } else if (line.startsWith('# ')) {
      out.push(`<h1>${inline(line.slice(2))}</h1>`);
    } else if (line.startsWith('- ')) {
      if (!inList) out.push('<ul>');
      inList = true;
      out.push(`<li>${inline(line.slice(2))}`);
    } else if (line.startsWith('  ') && inList) {
      out.push(` ${inline(line.trim())}`);
    } else if (line.trim() !== '') {
      out.push(`<p>${inline(line)}</p>`);
    }
  }
  if (inList) out.push('</ul>');
  return out.join('\n');
}

export function renderHtml(doc: BenchDocument, markdown: string): string {
  const charts = doc.config.scenarios
    .map((scenario) => {
      const rows = doc.summaries.filter((summary) => summary.scenario === scenario.id);
      if (rows.length === 0) return '';
      return `<section><h2>${escapeHtml(scenarioTitle(scenario))}</h2><div class="charts">${barChart('req/s (median, whisker = min–max)', rows, (row) => row.reqPerSec, 'req/s')}${barChart('client CPU ms per 1,000 requests (lower is better)', rows, (row) => row.cpuMsPer1k, 'ms')}</div></section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Volley throughput ${escapeHtml(doc.startedAt)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:0.5rem 1rem 0.5rem 0}figcaption{font-weight:600;font-size:13px}
.charts{display:flex;flex-wrap:wrap}code{background:#f3f3f3;padding:0 3px}
</style></head><body>
${markdownToHtml(markdown)}
<h1>Charts</h1>
${charts}
</body></html>
`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (file === undefined)
    throw new Error('usage: node --import tsx throughput/report.ts <result.json>');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as BenchDocument;
  doc.summaries = summarize(doc.runs, doc.config.scenarios, doc.config.contenders);
  const markdown = renderMarkdown(doc);
  writeFileSync(file.replace(/\.json$/, '.md'), markdown);
  writeFileSync(file.replace(/\.json$/, '.html'), renderHtml(doc, markdown));
  process.stdout.write(`${markdown}\n`);
}
