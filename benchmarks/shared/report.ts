/**
 * What the reports of the throughput and embeddings matrices share: the run record, statistics
 * over runs (median and min-max, ratios paired within a repetition), number formatting, the
 * Markdown preamble, per-scenario tables and failure list, and the HTML page (the Markdown's
 * tables plus bar charts in inline SVG, no scripts or external assets, so it opens offline).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { MachineInfo } from '../throughput/proc-stats.js';

/** Other processes (not the client, not the server) using more than this many cores make a run noisy. */
export const NOISY_OTHER_CORES = 0.35;

/** What every contender's result line holds that the runner and the reports read. */
export interface ResultBase {
  clientCores: number;
  errors: number;
  firstError?: string;
  /** Per-request figures; a whole-process run (cli-run/) has none. */
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  eventLoopDelayP99Ms?: number;
  maxRssMb: number;
}

/** One run: one contender in one scenario of one repetition, in a fresh client and server process. */
export interface MatrixRun<Result extends ResultBase, Server, Bound extends string> {
  rep: number;
  /** Position of this contender within its rep and scenario (order is rotated every rep). */
  position: number;
  scenario: string;
  contender: string;
  ok: boolean;
  error?: string;
  result?: Result;
  server?: Server;
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

/** The head of every result file. */
export interface DocumentBase<Config> {
  command: string;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: MachineInfo & { loadAverageBefore: number[]; loadAverageAfter: number[] };
  versions: Record<string, string>;
  config: Config & { reps: number; quick: boolean };
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
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

type AnyRun = MatrixRun<ResultBase, { cores: number }, string>;

/** Runs that count in the summaries: completed, with a result, not replaced by a re-run. */
export function counted<R extends AnyRun>(runs: readonly R[]): R[] {
  return runs.filter((run) => run.ok && run.replaced !== true && run.result !== undefined);
}

/**
 * Each counted run of `contender` in `scenario`, divided by `reference`'s run in the same rep and
 * scenario (by `metric`, higher is better).
 */
export function pairedRatios<R extends AnyRun>(
  all: readonly R[],
  scenario: string,
  contender: string,
  reference: string,
  metric: (result: NonNullable<R['result']>) => number,
): number[] {
  const ratios: number[] = [];
  const kept = counted(all);
  for (const run of kept) {
    if (run.scenario !== scenario || run.contender !== contender) continue;
    const ref = kept.find(
      (other) =>
        other.contender === reference && other.scenario === scenario && other.rep === run.rep,
    );
    if (run.result === undefined || ref?.result === undefined) continue;
    const a = metric(run.result as NonNullable<R['result']>);
    const b = metric(ref.result as NonNullable<R['result']>);
    if (b > 0) ratios.push(a / b);
  }
  return ratios;
}

/** How many runs a summary row stands on. */
export interface RunCounts {
  runs: number;
  failedRuns: number;
  noisyRuns: number;
  /** Noisy runs that were repeated (not counted in `runs`). */
  replacedRuns: number;
  errors: number;
}

/** The runs of one contender in one scenario, as a summary row is built from them. */
export interface RunGroup<R extends AnyRun> {
  /** The row's first columns: which runs, and how many. */
  head: { scenario: string; contender: string } & RunCounts;
  /** The row's last columns, the same in every matrix. */
  tail: {
    serverCores: Stat | undefined;
    latencyP50Ms: Stat | undefined;
    latencyP99Ms: Stat | undefined;
    eventLoopDelayP99Ms: Stat | undefined;
    maxRssMb: Stat | undefined;
    /** The most common bound over the runs. */
    bound: NonNullable<R['bound']> | undefined;
  };
  /** Median and min-max of a number over the counted runs. */
  pick(get: (run: R) => number | undefined): Stat | undefined;
  /** Paired ratios against another contender (see pairedRatios). */
  ratioTo(reference: string): Stat | undefined;
}

/** One group per scenario × contender that has runs, in scenario then contender order. */
export function groupRuns<R extends AnyRun>(
  runs: readonly R[],
  scenarios: readonly { id: string }[],
  contenders: readonly string[],
  metric: (result: NonNullable<R['result']>) => number,
): RunGroup<R>[] {
  const groups: RunGroup<R>[] = [];
  for (const { id: scenario } of scenarios) {
    for (const contender of contenders) {
      const all = runs.filter((run) => run.scenario === scenario && run.contender === contender);
      const kept = all.filter((run) => run.replaced !== true);
      if (kept.length === 0) continue;
      const ok = counted(kept);
      const pick = (get: (run: R) => number | undefined): Stat | undefined =>
        stat(ok.map(get).filter((value): value is number => value !== undefined));
      groups.push({
        head: {
          scenario,
          contender,
          runs: kept.length,
          failedRuns: kept.filter((run) => !run.ok).length,
          noisyRuns: ok.filter((run) => run.noisy).length,
          replacedRuns: all.length - kept.length,
          errors: ok.reduce((sum, run) => sum + (run.result?.errors ?? 0), 0),
        },
        tail: {
          serverCores: pick((run) => run.server?.cores),
          latencyP50Ms: pick((run) => run.result?.latencyP50Ms),
          latencyP99Ms: pick((run) => run.result?.latencyP99Ms),
          eventLoopDelayP99Ms: pick((run) => run.result?.eventLoopDelayP99Ms),
          maxRssMb: pick((run) => run.result?.maxRssMb),
          bound: mostCommon(
            ok
              .map((run) => run.bound)
              .filter((bound): bound is NonNullable<R['bound']> => bound !== undefined),
          ),
        },
        pick,
        ratioTo: (reference) => stat(pairedRatios(runs, scenario, contender, reference, metric)),
      });
    }
  }
  return groups;
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

/** The runs column: how many counted, and how many of them were noisy, failed or re-run. */
export function runsCell(counts: RunCounts): string {
  const notes: string[] = [];
  if (counts.noisyRuns > 0) notes.push(`${counts.noisyRuns} noisy`);
  if (counts.failedRuns > 0) notes.push(`${counts.failedRuns} failed`);
  if (counts.replacedRuns > 0) notes.push(`${counts.replacedRuns} noisy re-run`);
  return notes.length > 0 ? `${counts.runs} (${notes.join(', ')})` : String(counts.runs);
}

/** Title, machine, versions and command line: the top of every report. */
export function preamble(doc: DocumentBase<object>, title: string): string[] {
  const { machine } = doc;
  return [
    `# ${title}`,
    '',
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.totalMemGiB} GiB, Node ${machine.node}, ${machine.platform} ${machine.kernel}. ` +
      `Git ${machine.git.short}${machine.git.dirty ? ' (dirty worktree)' : ''}. ` +
      `Load average before ${machine.loadAverageBefore.join(' / ')}, after ${machine.loadAverageAfter.join(' / ')}. ` +
      `${doc.config.reps} rep(s)${doc.config.quick ? ', quick mode' : ''}, ${Math.round(doc.durationS)} s in total.`,
    '',
    `Versions: ${Object.entries(doc.versions)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}.`,
    '',
    `Command: \`${doc.command}\``,
    '',
  ];
}

/** One table per scenario that has rows: a `## title`, the header, one line per row. */
export function scenarioTables<S extends { id: string }, Row extends { scenario: string }>(
  scenarios: readonly S[],
  summaries: readonly Row[],
  title: (scenario: S) => string,
  header: readonly [string, string],
  line: (row: Row) => string,
): string[] {
  const lines: string[] = [];
  for (const scenario of scenarios) {
    const rows = summaries.filter((summary) => summary.scenario === scenario.id);
    if (rows.length === 0) continue;
    lines.push(`## ${title(scenario)}`, '', ...header, ...rows.map(line), '');
  }
  return lines;
}

/** Runs that failed and runs with failed requests, if any. */
export function failureLines(runs: readonly AnyRun[]): string[] {
  const failed = runs.filter((run) => !run.ok && run.replaced !== true);
  const errored = runs.filter(
    (run) => run.ok && run.replaced !== true && (run.result?.errors ?? 0) > 0,
  );
  if (failed.length === 0 && errored.length === 0) return [];
  return [
    '## Failures and errors',
    '',
    ...failed.map(
      (run) => `- rep ${run.rep} ${run.scenario} ${run.contender}: run failed: ${run.error ?? '?'}`,
    ),
    ...errored.map(
      (run) =>
        `- rep ${run.rep} ${run.scenario} ${run.contender}: ${run.result?.errors} errors, first: ${run.result?.firstError ?? '?'}`,
    ),
    '',
  ];
}

// ---------------------------------------------------------------------------------------------
// HTML

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[char] ?? char,
  );
}

/** Sizes (px) and colours of one report's bar charts. */
export interface ChartStyle {
  width: number;
  /** Room for the contender names, left of the bars. */
  label: number;
  barHeight: number;
  gap: number;
  /** y of the first bar. */
  top: number;
  /** Room right of the longest bar for its value. */
  valueRoom: number;
  /** Baseline of the texts below each bar's top. */
  textY: number;
  colors: Record<string, string>;
  fallbackColor: string;
}

/** Horizontal bars (median) with a min-max whisker, one per contender. */
export function barChart<Row extends { contender: string }>(
  style: ChartStyle,
  title: string,
  rows: readonly Row[],
  get: (row: Row) => Stat | undefined,
  unit: string,
): string {
  const { width, label, barHeight, gap, top, textY } = style;
  const height = rows.length * (barHeight + gap) + top + 6;
  const max = Math.max(1, ...rows.map((row) => get(row)?.max ?? 0));
  const scale = (value: number): number =>
    Math.round(((width - label - style.valueRoom) * value * 10) / max) / 10;
  const bars = rows
    .map((row, index) => {
      const value = get(row);
      const y = top + index * (barHeight + gap);
      if (value === undefined) return '';
      const color = style.colors[row.contender] ?? style.fallbackColor;
      const whisker =
        value.n > 1
          ? `<line x1="${label + scale(value.min)}" x2="${label + scale(value.max)}" y1="${y + barHeight / 2}" y2="${y + barHeight / 2}" stroke="#222" stroke-width="1.5"/>`
          : '';
      return `<text x="${label - 6}" y="${y + textY}" text-anchor="end">${escapeHtml(row.contender)}</text><rect x="${label}" y="${y}" width="${scale(value.median)}" height="${barHeight}" fill="${color}"/>${whisker}<text x="${label + scale(value.max) + 6}" y="${y + textY}">${fmt(value.median)} ${unit}</text>`;
    })
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${bars}</svg></figure>`;
}

/** One chart's title, value and unit. */
export type ChartSeries<Row> = [title: string, get: (row: Row) => Stat | undefined, unit: string];

/** What every report draws per scenario: a rate (higher is better), then client CPU (lower is better). */
export function rateAndCpuCharts<Row extends { contender: string }>(
  style: ChartStyle,
  rows: readonly Row[],
  rate: ChartSeries<Row>,
  cpu: ChartSeries<Row>,
): string {
  return (
    barChart(style, rate[0], rows, rate[1], rate[2]) + barChart(style, cpu[0], rows, cpu[1], cpu[2])
  );
}

/** Minimal Markdown -> HTML for what the reports write: headings, paragraphs, lists, tables. */
export function markdownToHtml(markdown: string): string {
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

/**
 * The HTML page: the Markdown, then per scenario a section headed by `heading` (raw HTML) holding
 * the charts `charts` draws for its rows.
 */
export function renderPage<S extends { id: string }, Row extends { scenario: string }>(options: {
  title: string;
  markdown: string;
  scenarios: readonly S[];
  summaries: readonly Row[];
  heading: (scenario: S) => string;
  charts: (rows: Row[]) => string;
  /** Appended to the stylesheet. */
  css?: string;
}): string {
  const sections = options.scenarios
    .map((scenario) => {
      const rows = options.summaries.filter((summary) => summary.scenario === scenario.id);
      if (rows.length === 0) return '';
      return `<section>${options.heading(scenario)}<div class="charts">${options.charts(rows)}</div></section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(options.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:0.5rem 1rem 0.5rem 0}figcaption{font-weight:600;font-size:13px}
.charts{display:flex;flex-wrap:wrap}code{background:#f3f3f3;padding:0 3px}${options.css ?? ''}
</style></head><body>
${markdownToHtml(options.markdown)}
<h1>Charts</h1>
${sections}
</body></html>
`;
}

/**
 * A report module run as a script (`node --import tsx <script> <result.json>`): recomputes what
 * `derive` derives from the file's runs, rewrites the .md and .html beside it and prints the
 * Markdown. Does nothing when `moduleUrl` is not the script node was started with.
 */
export function rerenderWhenRun<Doc>(
  moduleUrl: string,
  script: string,
  derive: (doc: Doc) => void,
  markdown: (doc: Doc) => string,
  html: (doc: Doc, markdown: string) => string,
): void {
  if (process.argv[1] === undefined || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  const file = process.argv[2];
  if (file === undefined) throw new Error(`usage: node --import tsx ${script} <result.json>`);
  const doc = JSON.parse(readFileSync(file, 'utf8')) as Doc;
  derive(doc);
  const text = markdown(doc);
  writeFileSync(file.replace(/\.json$/, '.md'), text);
  writeFileSync(file.replace(/\.json$/, '.html'), html(doc, text));
  process.stdout.write(`${text}\n`);
}
