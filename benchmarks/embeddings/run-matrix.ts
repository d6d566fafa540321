/**
 * Runs the embeddings matrix: every contender through every cell (vector size x inputs per request
 * x response encoding), each run in a fresh contender process against a fresh simulator process,
 * repeated rep-major with the contender order rotated each rep. Writes
 * results/embeddings-<date>-<sha>.{json,md,html} and prints the Markdown on stdout (progress goes
 * to stderr).
 *
 *   node --import tsx embeddings/run-matrix.ts [--reps 3] [--quick] [--scenario d1536,n64,base64]
 *        [--contenders volley-async,volley-threads] [--scale 0.5] [--concurrency 16]
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSimulator } from '@volley/sim';
import * as matrix from '../shared/matrix.js';
import { spawnScript, startSim } from '../throughput/processes.js';
import type { BenchDocument, Bound, RunRecord } from './report.js';
import { derive, renderHtml, renderMarkdown, SCHEMA } from './report.js';
import type { EmbedScenario } from './scenarios.js';
import { buildScenarios, CONTENDERS, KNOWN_CONTENDERS, matchesScenario } from './scenarios.js';
import { inputsFor, JSON_HEADERS, MODEL } from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = dirname(HERE);
const REPO_DIR = dirname(BENCH_DIR);
const CLI_BIN = join(REPO_DIR, 'packages/cli/bin/volley.js');
/** `volley sim` plus `ignoreEncodingFormat`, for the float cells (see sim-server.mjs). */
const FLOAT_SIM = join(HERE, 'sim-server.mjs');
const RESULTS_DIR = join(BENCH_DIR, 'results');

const { values: flags } = parseArgs({
  // `pnpm run bench:embeddings -- --quick` passes the `--` through; it is not an end-of-options marker here.
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    ...matrix.COMMON_FLAGS,
    concurrency: { type: 'string' },
    scale: { type: 'string' },
    requests: { type: 'string' },
    'quiet-wait-ms': { type: 'string' },
  },
});

if (flags.help) {
  process.stdout.write(`usage: node --import tsx embeddings/run-matrix.ts [options]
  --reps N             repetitions of the whole matrix (default 3; 1 with --quick)
  --quick              one rep, a tenth of the vectors: a smoke test, not a measurement
  --scenario LIST      cell ids (d1536-n64-base64) or parts (d1536, n64, base64); parts of one kind
                       are alternatives, kinds combine: d384,d1536,base64
  --contenders LIST    any of ${KNOWN_CONTENDERS.join(', ')} (default: ${CONTENDERS.join(', ')})
  --concurrency N      requests in flight (default 16)
  --scale X            multiply every cell's vector budget (e.g. 0.5)
  --requests N         measured requests per run (overrides the cells')
  --warmup N           warm-up requests per run (overrides the cells')
  --retry-noisy N      repeat a noisy run up to N times, the repeat replacing it (default 1; 0 = never)
  --quiet-wait-ms N    longest wait for the machine to go quiet before each run (default 6000)
`);
  process.exit(0);
}

const quietWaitMaxMs = matrix.countFlag('quiet-wait-ms', flags['quiet-wait-ms'], 6000);
const scale = flags.scale === undefined ? undefined : Number(flags.scale);
if (scale !== undefined && !(scale > 0)) throw new Error(`--scale must be > 0, got ${flags.scale}`);
const scenarioTokens = matrix.list(flags.scenario);
const scenarios = buildScenarios({
  quick: flags.quick,
  concurrency: matrix.optionalInt('concurrency', flags.concurrency),
  scale,
  requests: matrix.optionalInt('requests', flags.requests),
  warmupRequests: matrix.optionalInt('warmup', flags.warmup),
}).filter((scenario) => matchesScenario(scenario, scenarioTokens));
if (scenarios.length === 0) throw new Error(`no cell matches ${scenarioTokens.join(', ')}`);
const contenders = matrix.selectContenders(flags.contenders, KNOWN_CONTENDERS, CONTENDERS);

/**
 * Bytes of one response body per cell, from one probe request each to an in-process simulator
 * (the same code as the server the runs use), before the matrix starts.
 */
async function probeWireBytes(cells: readonly EmbedScenario[]): Promise<Record<string, number>> {
  const sim = await createSimulator({ logBodies: false });
  const sizes: Record<string, number> = {};
  try {
    for (const cell of cells) {
      const response = await fetch(`${sim.url}/embeddings`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: JSON.stringify({
          model: MODEL,
          input: inputsFor(0, cell.inputsPerRequest),
          dimensions: cell.dimensions,
          encoding_format: cell.encoding,
        }),
      });
      sizes[cell.id] = (await response.arrayBuffer()).byteLength;
    }
  } finally {
    await sim.close();
  }
  return sizes;
}

/** `contenders/<name>.ts <url> <C> <requests> <warm-up> <dims> <inputs> <encoding>`. */
function spawnContender(contender: string, url: string, cell: EmbedScenario) {
  const { concurrency, requests, warmupRequests, dimensions, inputsPerRequest, encoding } = cell;
  return spawnScript(join(HERE, 'contenders', `${contender}.ts`), [
    url,
    ...[concurrency, requests, warmupRequests, dimensions, inputsPerRequest, encoding],
  ]);
}

const setup = matrix.matrixSetup('embeddings', 'cell', flags, scenarios, contenders);
const started = matrix.startMatrix(setup, REPO_DIR);
const wireBytes = await probeWireBytes(scenarios);
const runs = await matrix.runMatrix<EmbedScenario, RunRecord>(setup, started, {
  runOne: (cell, slot) =>
    matrix.runOne({
      ...slot,
      quietWaitMaxMs,
      timeoutMs: 180_000,
      startServer: () =>
        cell.encoding === 'float'
          ? startSim(FLOAT_SIM, 0, 15_000, ['--ignore-encoding-format'])
          : startSim(CLI_BIN, 0),
      spawn: (url) => spawnContender(slot.contender, url, cell),
      // A failed spot check still prints its result line: keep it, and say what failed.
      keepFailedResult: true,
      failure: (result) => (result.spotCheck !== 'ok' ? result.spotCheck : undefined),
      server: (cpuMs, cores, result) => ({
        ...matrix.serverCpu(cpuMs, cores),
        cpuMsPer1kVectors: matrix.per1k(cpuMs, result.vectors),
      }),
      classify: (result, serverCores): Bound => matrix.cpuBound(result.clientCores, serverCores),
    }),
  describe: (run, r) =>
    `${Math.round(r.vectorsPerSec)} vectors/s, client ${r.cpuMsPer1kVectors.toFixed(1)} ms/1k (${r.clientCores.toFixed(2)} cores, loop p99 ${r.eventLoopDelayP99Ms} ms), server ${run.server?.cores.toFixed(2) ?? '?'} cores, others ${run.system?.otherCores.toFixed(2) ?? '?'} cores, ${(r.wallMs / 1000).toFixed(1)} s${run.noisy ? ' NOISY' : ''}${r.errors > 0 ? ` ERRORS ${r.errors}` : ''}`,
});

const doc: BenchDocument = {
  schema: SCHEMA,
  ...matrix.documentHead(
    'embeddings/run-matrix.ts',
    setup,
    started,
    matrix.packageVersions(BENCH_DIR, ['volley', 'undici', 'openai', 'p-limit']),
    { quietWaitMaxMs },
  ),
  wireBytes,
  runs,
  summaries: [],
  verdicts: [],
  rules: [],
};
derive(doc);
const markdown = renderMarkdown(doc);
matrix.writeResults(RESULTS_DIR, 'embeddings', doc, markdown, renderHtml(doc, markdown));
