/**
 * Shared limits across processes: two independent `volley run` processes, each on its own file
 * and each trying to go as fast as it can, against one simulator that enforces the limit.
 *
 *   rpm: the simulator enforces 6,000 RPM; each run is given `--rpm 6000`
 *   tpm: the simulator enforces 300,000 TPM (settled against usage); each run `--tpm 300000`
 *
 * Each limit runs twice: with `--cluster` (one Redis, the shared bucket) and without (each
 * process believes it has the whole limit). Reported: the rate the simulator accepted while both
 * ran, the share of requests answered 429, and Redis commands per request from `INFO
 * commandstats` deltas of a redis-server started for this run (so nothing else counts).
 *
 *   node --import tsx cluster/run.ts [--lines 2500] [--scenario rpm-cluster,...] [--out file.json]
 *
 * The packages must be built (the runs use packages/cli/bin/volley.js).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Simulator, SimulatorOptions } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { commandDelta, commandStats, startRedis } from '../shared/redis.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'packages/cli/bin/volley.js');

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : (process.argv[at + 1] ?? fallback);
}

const LINES = Number(flag('lines', '2500'));
const OUT = resolve(
  flag(
    'out',
    join(ROOT, `benchmarks/results/baseline-cluster-${new Date().toISOString().slice(0, 10)}.json`),
  ),
);

/** Commands clients send themselves; the rest are called from inside the Lua scripts. */
const CLIENT_COMMANDS = new Set([
  'evalsha',
  'eval',
  'set',
  'del',
  'ping',
  'subscribe',
  'unsubscribe',
  'client|setname',
  'client|setinfo',
  'info',
  'quit',
  'select',
]);

interface Scenario {
  name: string;
  limit: 'rpm' | 'tpm';
  cluster: boolean;
}

interface Outcome {
  name: string;
  cluster: boolean;
  limit: { kind: 'rpm' | 'tpm'; value: number };
  requests: number;
  accepted: number;
  rateLimited: number;
  rateLimitedShare: number;
  /** From the first accepted request to the moment the first process finished: both running. */
  bothRunningMs: number;
  acceptedRpmBothRunning: number;
  /** Tokens (prompt + completion) of answered requests per minute, while both ran. */
  tokensPerMinuteBothRunning: number;
  wallMs: number;
  exitCodes: Array<number | null>;
  redis?: {
    clientCommands: number;
    perRequest: number;
    insideScripts: number;
    calls: Record<string, number>;
  };
}

const RPM = 6_000;
const TPM = 300_000;

async function writeLines(path: string, name: string, tokens: boolean): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < LINES; i++) {
    const body: Record<string, unknown> = {
      model: 'volley-sim-1',
      messages: [{ role: 'user', content: `${name} line ${i}: tell me something` }],
    };
    if (tokens) body.max_tokens = 64;
    lines.push(
      JSON.stringify({
        custom_id: `${name}-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body,
      }),
    );
  }
  await writeFile(path, `${lines.join('\n')}\n`);
}

function startRun(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; exited: Promise<{ code: number | null; at: number }> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; at: number }>((done) =>
    child.on('close', (code) => {
      if (code !== 0 && code !== 1) process.stderr.write(stderr);
      done({ code, at: Date.now() });
    }),
  );
  return { child, exited };
}

async function runScenario(scenario: Scenario, dir: string, redisPort: number): Promise<Outcome> {
  const simOptions: SimulatorOptions = {
    logBodies: false,
    logCapacity: LINES * 8,
    limits: scenario.limit === 'rpm' ? { rpm: RPM } : { tpm: TPM, tokenAccounting: 'usage' },
  };
  const sim: Simulator = await createSimulator(simOptions);
  const limitFlag = scenario.limit === 'rpm' ? ['--rpm', String(RPM)] : ['--tpm', String(TPM)];
  const before = await commandStats(redisPort);
  const startedAt = Date.now();
  // The simulator's token counters, sampled: tokens are counted as answers complete.
  const samples: Array<{ at: number; tokens: number }> = [];
  const sampler = setInterval(() => {
    const { promptTokens, completionTokens } = sim.stats();
    samples.push({ at: Date.now(), tokens: promptTokens + completionTokens });
  }, 250);
  const runs = ['a', 'b'].map((name) => {
    const input = join(dir, `${scenario.name}-${name}.jsonl`);
    return { name, input };
  });
  for (const { name, input } of runs) await writeLines(input, name, scenario.limit === 'tpm');
  const started = runs.map(({ name, input }) =>
    startRun(
      [
        'run',
        input,
        '-o',
        join(dir, `${scenario.name}-${name}.out.jsonl`),
        '--overwrite',
        '--progress',
        'none',
        '--max-retries',
        '50',
        ...limitFlag,
        ...(scenario.cluster ? ['--cluster', `redis://127.0.0.1:${redisPort}`] : []),
      ],
      { OPENAI_BASE_URL: sim.url },
    ),
  );
  const ends = await Promise.all(started.map((s) => s.exited));
  clearInterval(sampler);
  const wallMs = Date.now() - startedAt;
  const after = await commandStats(redisPort);
  const stats = sim.stats();
  const accepted = sim.requests
    .filter((entry) => entry.status === 200)
    .map((entry) => entry.receivedAt)
    .sort((a, b) => a - b);
  const first = accepted[0] ?? 0;
  const firstEnd = Math.min(...ends.map((end) => end.at));
  const both = accepted.filter((at) => at <= firstEnd);
  const bothRunningMs = (both.at(-1) ?? first) - first;
  const inWindow = samples.filter((sample) => sample.at >= first && sample.at <= firstEnd);
  const firstSample = inWindow[0];
  const lastSample = inWindow.at(-1);
  const tokensPerMinute =
    firstSample === undefined || lastSample === undefined || lastSample.at === firstSample.at
      ? 0
      : ((lastSample.tokens - firstSample.tokens) * 60_000) / (lastSample.at - firstSample.at);
  await sim.close();
  const outcome: Outcome = {
    name: scenario.name,
    cluster: scenario.cluster,
    limit: { kind: scenario.limit, value: scenario.limit === 'rpm' ? RPM : TPM },
    requests: stats.requests,
    accepted: accepted.length,
    rateLimited: stats.rateLimited,
    rateLimitedShare: stats.rateLimited / stats.requests,
    bothRunningMs,
    acceptedRpmBothRunning: ((both.length - 1) * 60_000) / bothRunningMs,
    tokensPerMinuteBothRunning: tokensPerMinute,
    wallMs,
    exitCodes: ends.map((end) => end.code),
  };
  if (scenario.cluster) {
    const calls = commandDelta(after, before);
    let clientCommands = 0;
    let insideScripts = 0;
    for (const [name, count] of Object.entries(calls)) {
      if (CLIENT_COMMANDS.has(name)) clientCommands += count;
      else insideScripts += count;
    }
    outcome.redis = {
      clientCommands,
      perRequest: clientCommands / stats.requests,
      insideScripts,
      calls,
    };
  }
  return outcome;
}

const scenarios: Scenario[] = [
  { name: 'rpm-cluster', limit: 'rpm', cluster: true },
  { name: 'rpm-alone', limit: 'rpm', cluster: false },
  { name: 'tpm-cluster', limit: 'tpm', cluster: true },
  { name: 'tpm-alone', limit: 'tpm', cluster: false },
];

const only = flag('scenario', '');
const selected =
  only === '' ? scenarios : scenarios.filter((s) => only.split(',').includes(s.name));
const redis = await startRedis();
const dir = await mkdtemp(join(tmpdir(), 'volley-cluster-bench-'));
const outcomes: Outcome[] = [];
try {
  for (const scenario of selected) {
    process.stderr.write(`${scenario.name}: 2 processes x ${LINES} lines...\n`);
    const outcome = await runScenario(scenario, dir, redis.port);
    outcomes.push(outcome);
    process.stderr.write(`${JSON.stringify(outcome)}\n`);
  }
} finally {
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
}
const result = {
  benchmark: 'cluster-shared-limits',
  date: new Date().toISOString(),
  command: `node --import tsx cluster/run.ts --lines ${LINES}`,
  node: process.version,
  linesPerProcess: LINES,
  outcomes,
};
await writeFile(OUT, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
