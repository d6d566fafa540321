/**
 * Whole-process CLI benchmark: the same OpenAI Batch file (100,000 short chat lines by default)
 * through `volley run` (async and threads mode), a lean hand-written undici batch client and the
 * `openai` SDK + p-limit batch client, each a fresh process with a fresh output file, against a
 * zero-latency server: the nginx reference (fixed answer, a few µs of CPU per request) and
 * `volley sim`. Rep-major with the contender order rotated each rep (shared/matrix.ts); every
 * output is checked for exactly one good record per custom_id. Writes
 * results/cli-run-<date>-<sha>.{json,md,html} and prints the Markdown on stdout.
 *
 *   node --import tsx cli-run/run.ts [--reps 3] [--quick] [--lines 100000] [--concurrency 256]
 *        [--scenario nginx,sim] [--contenders lean-undici,volley-async,volley-threads,openai-sdk]
 */
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as matrix from '../shared/matrix.js';
import { startNginx } from '../shared/nginx.js';
import { spawnScript, startSim } from '../throughput/processes.js';
import { SIM_CHAT_COMPLETION_JSON } from '../throughput/workload.js';
import { writeBatchInput } from './batch-file.js';
import { buildClients, CLI_BIN, CONTENDERS, clientArgs, REPO_DIR } from './clients.js';
import type { BenchDocument, CliScenario, RunRecord } from './report.js';
import { renderHtml, renderMarkdown, SCHEMA, summarize } from './report.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = dirname(HERE);
const RESULTS_DIR = join(BENCH_DIR, 'results');
const SERVERS = ['nginx', 'sim'] as const;

const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    ...matrix.COMMON_FLAGS,
    lines: { type: 'string' },
    concurrency: { type: 'string' },
  },
});

if (flags.help) {
  process.stdout.write(`usage: node --import tsx cli-run/run.ts [options]
  --reps N            repetitions (default 3; 1 with --quick)
  --quick             one rep, 10,000 lines: a smoke test, not a measurement
  --lines N           lines in the input file (default 100,000)
  --concurrency N     requests in flight (default 256)
  --scenario LIST     servers: ${SERVERS.join(', ')} (default both)
  --contenders LIST   any of ${CONTENDERS.join(', ')} (default all)
  --retry-noisy N     repeat a noisy run up to N times, the repeat replacing it (default 1; 0 = never)
`);
  process.exit(0);
}
if (flags.warmup !== undefined) throw new Error('--warmup: a whole-process run has no warm-up');

const lines = matrix.optionalInt('lines', flags.lines) ?? (flags.quick ? 10_000 : 100_000);
const concurrency = matrix.optionalInt('concurrency', flags.concurrency) ?? 256;
const servers = matrix.selectContenders(flags.scenario, SERVERS, SERVERS) as CliScenario['id'][];
const scenarios: CliScenario[] = servers.map((id) => ({ id, lines, concurrency }));
const contenders = matrix.selectContenders(flags.contenders, CONTENDERS, CONTENDERS);

buildClients();
const workDir = await mkdtemp(join(tmpdir(), 'volley-bench-cli-run-'));
const input = join(workDir, 'in.jsonl');
await writeBatchInput(input, lines);
matrix.log(`input: ${lines} lines in ${input}`);

const setup = matrix.matrixSetup('cli-run', 'server', flags, scenarios, contenders);
const started = matrix.startMatrix(setup, REPO_DIR);
let runNumber = 0;
const runs = await matrix.runMatrix<CliScenario, RunRecord>(setup, started, {
  runOne: async (scenario, slot) => {
    // A fresh output directory per run: nothing to resume, nothing left from the last one.
    const runDir = join(workDir, `run-${++runNumber}`);
    mkdirSync(runDir);
    const output = join(runDir, 'out.jsonl');
    try {
      return await matrix.runOne({
        ...slot,
        quietWaitMaxMs: 10_000,
        timeoutMs: 900_000,
        startServer: () =>
          scenario.id === 'nginx' ? startNginx(SIM_CHAT_COMPLETION_JSON) : startSim(CLI_BIN, 0),
        spawn: (url) =>
          spawnScript(join(HERE, 'measure.ts'), [
            slot.contender,
            lines,
            output,
            '--',
            process.execPath,
            ...clientArgs(slot.contender, { input, output, url, concurrency }),
          ]),
        keepFailedResult: true,
        failure: (result) => result.firstError,
        server: (cpuMs, cores, result) => ({
          ...matrix.serverCpu(cpuMs, cores),
          cpuUsPerLine: matrix.per1k(cpuMs, result.lines),
        }),
        classify: (result, serverCores) => matrix.cpuBound(result.clientCores, serverCores),
      });
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  },
  describe: (run, r) =>
    `${(r.wallMs / 1000).toFixed(2)} s, ${Math.round(r.linesPerSec)} lines/s, client ${r.cpuUsPerLine.toFixed(1)} µs/line (${r.clientCores.toFixed(2)} cores), server ${run.server?.cores.toFixed(2) ?? '?'} cores, RSS ${Math.round(r.maxRssMb)} MB, others ${run.system?.otherCores.toFixed(2) ?? '?'} cores${run.noisy ? ' NOISY' : ''}`,
});
await rm(workDir, { recursive: true, force: true });

const placeholder = (contender: string): string =>
  [
    'node',
    ...clientArgs(contender, { input: '{input}', output: '{output}', url: '{url}', concurrency }),
  ]
    .map((part) => part.replace(REPO_DIR, '.'))
    .join(' ');
const doc: BenchDocument = {
  schema: SCHEMA,
  ...matrix.documentHead(
    'cli-run/run.ts',
    setup,
    started,
    matrix.packageVersions(BENCH_DIR, ['volley', 'undici', 'openai', 'p-limit']),
    { commands: Object.fromEntries(contenders.map((name) => [name, placeholder(name)])) },
  ),
  runs,
  summaries: summarize(runs, scenarios, contenders),
};
const markdown = renderMarkdown(doc);
matrix.writeResults(RESULTS_DIR, 'cli-run', doc, markdown, renderHtml(doc, markdown));
