/**
 * Summaries of one CLI benchmark (median and min-max per contender x server, ratios to the lean
 * undici client paired within a repetition) and their Markdown and HTML renderings.
 *
 * Run directly to re-render an existing result file:
 *   node --import tsx cli-run/report.ts results/cli-run-<date>-<sha>.json
 */
import type { DocumentBase, MatrixRun, Stat } from '../shared/report.js';
import * as common from '../shared/report.js';
import { CHARTS } from '../throughput/report.js';
import type { CliResult } from './measure.js';

export const SCHEMA = 'volley-bench-cli-run/1';

/** The yardstick every ratio is taken against. */
export const REFERENCE = 'lean-undici';

export type Bound = 'client' | 'server' | 'shared';

export type RunRecord = MatrixRun<
  CliResult,
  { cpuMs: number; cores: number; cpuUsPerLine: number },
  Bound
>;

/** One server: `nginx` (the reference, fixed answer) or `sim` (`volley sim`), both at 0 ms. */
export interface CliScenario {
  id: 'nginx' | 'sim';
  lines: number;
  concurrency: number;
}

export interface Summary extends common.RunCounts {
  scenario: string;
  contender: string;
  wallS: Stat | undefined;
  linesPerSec: Stat | undefined;
  /** lines/s divided by lean-undici's in the same rep and scenario, then the median. */
  speedToLean: Stat | undefined;
  cpuUsPerLine: Stat | undefined;
  /** CPU per line divided by lean-undici's in the same rep and scenario (lower is better). */
  cpuToLean: Stat | undefined;
  /** The client CPU's split: main thread, and every other thread together. */
  mainThreadUsPerLine: Stat | undefined;
  otherThreadsUsPerLine: Stat | undefined;
  clientCores: Stat | undefined;
  serverCpuUsPerLine: Stat | undefined;
  serverCores: Stat | undefined;
  maxRssMb: Stat | undefined;
  bound: Bound | undefined;
}

export interface BenchDocument
  extends DocumentBase<{
    contenders: string[];
    scenarios: CliScenario[];
    noisyOtherCores: number;
    retryNoisy: number;
    commands: Record<string, string>;
  }> {
  schema: typeof SCHEMA;
  runs: RunRecord[];
  summaries: Summary[];
}

const linesPerSec = (result: CliResult): number => result.linesPerSec;

export function summarize(
  runs: readonly RunRecord[],
  scenarios: readonly CliScenario[],
  contenders: readonly string[],
): Summary[] {
  return common.groupRuns(runs, scenarios, contenders, linesPerSec).map((group) => ({
    ...group.head,
    wallS: group.pick((run) => (run.result === undefined ? undefined : run.result.wallMs / 1000)),
    linesPerSec: group.pick((run) => run.result?.linesPerSec),
    speedToLean: group.ratioTo(REFERENCE),
    cpuUsPerLine: group.pick((run) => run.result?.cpuUsPerLine),
    cpuToLean: common.stat(
      common.pairedRatios(
        runs,
        group.head.scenario,
        group.head.contender,
        REFERENCE,
        (result) => result.cpuUsPerLine,
      ),
    ),
    mainThreadUsPerLine: group.pick((run) => run.result?.mainThreadUsPerLine),
    otherThreadsUsPerLine: group.pick((run) => run.result?.otherThreadsUsPerLine),
    clientCores: group.pick((run) => run.result?.clientCores),
    serverCpuUsPerLine: group.pick((run) => run.server?.cpuUsPerLine),
    serverCores: group.tail.serverCores,
    maxRssMb: group.tail.maxRssMb,
    bound: group.tail.bound,
  }));
}

function scenarioTitle(scenario: CliScenario): string {
  const server =
    scenario.id === 'nginx'
      ? 'nginx reference server (fixed answer)'
      : '`volley sim` (Node, generates each answer)';
  return `${server}, 0 ms, ${new Intl.NumberFormat('en-US').format(scenario.lines)} lines, concurrency ${scenario.concurrency}`;
}

/** Volley's best mode per server against the targets. */
function headlines(doc: BenchDocument): string[] {
  const lines: string[] = [];
  for (const scenario of doc.config.scenarios) {
    const best = doc.summaries
      .filter((row) => row.scenario === scenario.id && row.contender.startsWith('volley-'))
      .sort((a, b) => (b.linesPerSec?.median ?? 0) - (a.linesPerSec?.median ?? 0))[0];
    if (best === undefined) continue;
    lines.push(
      `- **${scenario.id}:** best mode \`${best.contender}\`, ${common.fmt(best.linesPerSec?.median)} lines/s: ` +
        `${common.fmt(best.speedToLean?.median, 2)}× ${REFERENCE}'s speed (target ≥ 0.90), ` +
        `${common.fmt(best.cpuToLean?.median, 2)}× its client CPU per line (target ≤ 1.25).`,
    );
  }
  if (doc.config.quick) lines.push('', '*Quick mode: a smoke test, not a measurement.*');
  return lines.length > 0 ? [...lines, ''] : [];
}

export const HOW_TO_READ = `## How to read this

- **Setup.** One OpenAI Batch JSONL file (identical short chat requests, custom_ids \`line-0\`…),
  generated once per invocation into a temp dir. Each run is one whole client process (start-up,
  reading, sending, writing, exit) against a fresh server process at 0 ms latency, with a fresh
  output file; the client keeps C requests in flight. Client and server share the machine's cores:
  **compare ratios within one run, not absolute numbers across runs or machines.**
- **Order.** Rep-major, the contender order rotated each rep.
- **wall s** = spawn to exit of the client process. **lines/s** = good records / wall time.
- **× ${REFERENCE}** = each run divided by ${REFERENCE}'s run in the same rep and server, then
  the median (min–max) of those paired ratios: speed (higher is better) and CPU per line (lower is
  better).
- **client CPU µs/line** = user+system CPU of the client process over its whole life (all threads,
  and any children it waited for), from /proc/self/stat's cutime/cstime in the wrapper that
  started it (10 ms ticks), divided by the input lines.
- **main / other threads** = that CPU split between the client's main thread and all its other
  threads together (V8's GC and compiler helpers, the libuv pool, worker_threads: Node 20 gives
  them one name), from /proc/<pid>/task at the last 50 ms sample before exit, so slightly short.
- **server CPU µs/line** = the server's utime+stime (/proc) over the same window, per line.
- **peak RSS** = the client's VmHWM, sampled every 50 ms.
- **check** = after each run, untimed: the output must hold exactly one record per custom_id, each
  with status 200 and a string \`choices[0].message.content\`. A run that fails the check (or exits
  non-zero) is failed, not counted.
- **bound**, **noisy**: as in the throughput report (client or server ≥ 0.85 cores; other
  processes above ${common.NOISY_OTHER_CORES} cores; a noisy run is repeated once).
`;

export function renderMarkdown(doc: BenchDocument): string {
  const lines = common.preamble(doc, `CLI batch run, whole process, ${doc.startedAt}`);
  lines.push(...headlines(doc));
  lines.push(
    ...common.scenarioTables(
      doc.config.scenarios,
      doc.summaries,
      scenarioTitle,
      [
        `| contender | wall s | lines/s (median) | min–max | speed × ${REFERENCE} | client CPU µs/line | CPU × ${REFERENCE} | main / other threads µs/line | client cores | server CPU µs/line | server cores | peak RSS MB | bound | errors | runs |`,
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|',
      ],
      (row) =>
        `| ${row.contender} | ${common.fmt(row.wallS?.median, 2)} | ${common.fmt(row.linesPerSec?.median)} | ${common.spread(row.linesPerSec)} | ${common.ratio(row.speedToLean)} | ${common.fmt(row.cpuUsPerLine?.median, 1)} | ${common.ratio(row.cpuToLean)} | ${common.fmt(row.mainThreadUsPerLine?.median)} / ${common.fmt(row.otherThreadsUsPerLine?.median)} | ${common.fmt(row.clientCores?.median, 2)} | ${common.fmt(row.serverCpuUsPerLine?.median, 1)} | ${common.fmt(row.serverCores?.median, 2)} | ${common.fmt(row.maxRssMb?.median)} | ${row.bound ?? '–'} | ${common.fmt(row.errors)} | ${common.runsCell(row)} |`,
    ),
    ...common.failureLines(doc.runs),
    '## Commands',
    '',
    ...Object.entries(doc.config.commands).map(([name, command]) => `- ${name}: \`${command}\``),
    '',
    HOW_TO_READ,
  );
  return lines.join('\n');
}

export function renderHtml(doc: BenchDocument, markdown: string): string {
  return common.renderPage({
    title: `Volley CLI batch run ${doc.startedAt}`,
    markdown,
    scenarios: doc.config.scenarios,
    summaries: doc.summaries,
    heading: (scenario) => `<h2>${common.escapeHtml(scenarioTitle(scenario))}</h2>`,
    charts: (rows) =>
      common.rateAndCpuCharts(
        CHARTS,
        rows,
        ['lines/s (median, whisker = min–max)', (row) => row.linesPerSec, 'lines/s'],
        ['client CPU µs per line (lower is better)', (row) => row.cpuUsPerLine, 'µs'],
      ),
  });
}

common.rerenderWhenRun<BenchDocument>(
  import.meta.url,
  'cli-run/report.ts',
  (doc) => {
    doc.summaries = summarize(doc.runs, doc.config.scenarios, doc.config.contenders);
  },
  renderMarkdown,
  renderHtml,
);
