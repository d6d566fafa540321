/**
 * Runs the throughput matrix: every contender through every scenario, each run in a fresh
 * contender process against a fresh `volley sim` process, repeated rep-major with the contender
 * order rotated each rep. Writes results/throughput-<date>-<sha>.{json,md,html} and prints the
 * Markdown on stdout (progress goes to stderr).
 *
 *   node --import tsx throughput/run-matrix.ts [--reps 3] [--quick] [--scenario 0ms-c256,c1024]
 *        [--contenders undici-raw,volley-async] [--count N] [--warmup N]
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as matrix from '../shared/matrix.js';
import { startNginx } from '../shared/nginx.js';
import type { ContenderResult } from './harness.js';
import { spawnContender, startSim } from './processes.js';
import type { BenchDocument, Bound, RunRecord } from './report.js';
import { renderHtml, renderMarkdown, SCHEMA, summarize } from './report.js';
import type { Scenario } from './scenarios.js';
import {
  buildScenarios,
  CONTENDERS,
  DEFAULT_CONTENDERS,
  LONG_STREAM_CONTENDERS,
  matchesScenario,
} from './scenarios.js';
import { nginxAnswer, parseWorkload, STREAM_CHUNKS, serverFor } from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = dirname(HERE);
const REPO_DIR = dirname(BENCH_DIR);
const CLI_BIN = join(REPO_DIR, 'packages/cli/bin/volley.js');
const RESULTS_DIR = join(BENCH_DIR, 'results');

const { values: flags } = parseArgs({
  // `pnpm run bench -- --quick` passes the `--` through; it is not an end-of-options marker here.
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    ...matrix.COMMON_FLAGS,
    count: { type: 'string' },
    server: { type: 'string' },
    workload: { type: 'string', default: 'short-chat' },
  },
});

if (flags.help) {
  process.stdout.write(`usage: pnpm -F @volley/benchmarks bench [options]
  --reps N            repetitions of the whole matrix (default 3; 1 with --quick)
  --quick             one rep, 2,000 requests per run: a smoke test, not a measurement
  --scenario LIST     e.g. 0ms-c256, or a part: 20ms, c1024 (comma-separated or repeated)
  --contenders LIST   any of ${CONTENDERS.join(', ')}
  --count N           measured requests per run (overrides the scenario's)
  --warmup N          warm-up requests per run (overrides the scenario's)
  --retry-noisy N     repeat a noisy run up to N times, the repeat replacing it (default 1; 0 = never)
  --server S          sim (volley sim, default) or nginx (a fixed answer at a fraction of the CPU;
                      0 ms scenarios only)
  --workload W        short-chat (default) or long-stream (SSE of ${STREAM_CHUNKS} chunks per answer,
                      assembled by each client; nginx only; ${LONG_STREAM_CONTENDERS.join(', ')}
                      by default)
`);
  process.exit(0);
}

const workload = parseWorkload(flags.workload);
const server = serverFor(workload, flags.server);
const scenarioTokens = matrix.list(flags.scenario);
const scenarios = buildScenarios({
  workload,
  quick: flags.quick,
  count: matrix.optionalInt('count', flags.count),
  warmup: matrix.optionalInt('warmup', flags.warmup),
})
  .filter((scenario) => matchesScenario(scenario, scenarioTokens))
  // nginx answers at once: it has no latency to add.
  .filter((scenario) => server === 'sim' || scenario.latencyMs === 0);
const contenders = matrix.selectContenders(
  flags.contenders,
  CONTENDERS,
  workload === 'long-stream' ? LONG_STREAM_CONTENDERS : DEFAULT_CONTENDERS,
);
if (scenarios.length === 0) throw new Error(`no scenario matches ${scenarioTokens.join(', ')}`);

function classify(scenario: Scenario, result: ContenderResult, serverCores: number): Bound {
  if (
    scenario.latencyMs > 0 &&
    result.reqPerSec >= 0.8 * (scenario.concurrency / (scenario.latencyMs / 1000))
  ) {
    return 'latency';
  }
  return matrix.cpuBound(result.clientCores, serverCores);
}

const name = [
  'throughput',
  ...(server === 'sim' ? [] : [server]),
  ...(workload === 'short-chat' ? [] : [workload]),
].join('-');
const setup = matrix.matrixSetup(name, 'scenario', flags, scenarios, contenders);
const started = matrix.startMatrix(setup, REPO_DIR);
const runs = await matrix.runMatrix<Scenario, RunRecord>(setup, started, {
  runOne: (scenario, slot) =>
    matrix.runOne({
      ...slot,
      // Longest wait for the shared machine to go quiet before a run starts anyway.
      quietWaitMaxMs: 10_000,
      timeoutMs: 300_000,
      startServer: () =>
        server === 'sim'
          ? startSim(CLI_BIN, scenario.latencyMs)
          : startNginx(nginxAnswer(workload)),
      spawn: (url) =>
        spawnContender(slot.contender, url, scenario, scenario.count, process.env, workload),
      server: (cpuMs, cores, result) => ({
        ...matrix.serverCpu(cpuMs, cores),
        cpuMsPer1k: matrix.per1k(cpuMs, result.completed),
      }),
      classify: (result, serverCores) => classify(scenario, result, serverCores),
    }),
  describe: (run, r) =>
    `${Math.round(r.reqPerSec)} req/s, client ${Math.round(r.cpuMsPer1k)} ms/1k (${r.clientCores.toFixed(2)} cores), server ${run.server?.cores.toFixed(2) ?? '?'} cores, others ${run.system?.otherCores.toFixed(2) ?? '?'} cores${run.noisy ? ' NOISY' : ''}${r.errors > 0 ? ` ERRORS ${r.errors}` : ''}`,
});

const doc: BenchDocument = {
  schema: SCHEMA,
  ...matrix.documentHead(
    'throughput/run-matrix.ts',
    setup,
    started,
    matrix.packageVersions(BENCH_DIR, ['volley', 'undici', 'openai', 'p-limit', 'autocannon']),
    { server, workload },
  ),
  runs,
  summaries: summarize(runs, scenarios, contenders),
};
const markdown = renderMarkdown(doc);
matrix.writeResults(RESULTS_DIR, name, doc, markdown, renderHtml(doc, markdown));
