/**
 * Is `volley bench` the bottleneck? Two measurements against a zero-latency server in its own
 * process, each contender in a process of its own, for each server asked for:
 *
 *   - `sim`: `volley sim` at 0 ms. A Node server: on 2 cores it spends about as much CPU per
 *     request as the client, so the two share the machine and neither gets a core of its own.
 *   - `nginx`: nginx returning the same 412-byte completion (shared/nginx.ts) at a fraction of
 *     the CPU, so the client's own cost decides the rate.
 *
 *   1. Closed loop, same request, same concurrency: autocannon (fixed bytes, nothing parsed, one
 *      connection per lane, pipelining 1, one thread: its default and, for `amount` runs, its
 *      best setup) and `volley bench --threads T` for each T asked for (non-streaming, every
 *      response's status and usage read), the order rotated per repetition so drift of the shared
 *      machine hits all alike. Ratio bench/autocannon per repetition, CPU per request of both
 *      and of the server.
 *   2. Open loop at a fixed rate (default 5,000 req/s, constant arrivals, 10 s) for each T: the
 *      rate delivered (sends over the send span, and completions over the run) against the
 *      plan, with the schedule-lag p99 and the client-health verdict.
 *
 * Usage (from benchmarks/, packages built):
 *   node --import tsx bench-cmd/run.ts [--reps 3] [--count 60000] [--concurrency 64]
 *        [--rate 5000] [--duration-ms 10000] [--threads 1[,2,...]] [--server sim[,nginx]]
 *        [--out results/bench-cmd-<date>.json]
 * Markdown goes to stdout, progress to stderr, the JSON (with machine, Node and git revision) to
 * the --out file.
 */

import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx } from '../shared/nginx.js';
import { loadAverage, machineInfo, processCpuMs } from '../throughput/proc-stats.js';
import type { SimServer } from '../throughput/processes.js';
import { spawnContender, startSim } from '../throughput/processes.js';
import { CHAT_REQUEST, SIM_CHAT_COMPLETION_JSON } from '../throughput/workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const CLI = join(ROOT, 'packages/cli/bin/volley.js');

function raw(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

function flag(name: string, fallback: number): number {
  const text = raw(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(value > 0)) throw new Error(`--${name} must be a positive number`);
  return value;
}

const reps = flag('reps', 3);
// 60,000: at ~40k req/s a 20,000-request window is 0.5 s, and one collection of the startup
// garbage (35 ms, seen in a CPU profile) or one scheduler hiccup moved the ratio by 10%.
const count = flag('count', 60_000);
const concurrency = flag('concurrency', 64);
const rate = flag('rate', 5000);
const durationMs = flag('duration-ms', 10_000);
const threadsList = (raw('threads') ?? '1').split(',').map((t) => {
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--threads takes integers >= 0, got ${t}`);
  return n;
});
const servers = (raw('server') ?? 'sim').split(',');
for (const s of servers)
  if (s !== 'sim' && s !== 'nginx') throw new Error(`--server takes sim and/or nginx, got ${s}`);
const outRaw = raw('out');
const out =
  outRaw === undefined
    ? join(HERE, '..', 'results', `bench-cmd-${new Date().toISOString().slice(0, 10)}.json`)
    : resolve(outRaw);

/** Runs a child to its end; resolves with its stdout. */
function run(command: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr
      .setEncoding('utf8')
      .on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolvePromise(stdout)
        : reject(new Error(`${command} exited ${code}: ${stderr}`)),
    );
  });
}

interface BenchJson {
  request_throughput: number;
  completed: number;
  failed: number;
  duration: number;
  metrics: { schedule_lag_ms: { percentiles: Record<string, number | null> } };
  client_health: {
    client_limited: boolean;
    reasons: string[];
    process_cpu_cores: number;
    offered_rate: number | null;
    achieved_send_rate: number | null;
    late_fraction: number;
    dropped_sends: number;
    schedule_lag_p99_ms: number | null;
  };
}

async function benchRun(
  url: string,
  dataset: string,
  threads: number,
  args: string[],
): Promise<BenchJson> {
  const stdout = await run(process.execPath, [
    CLI,
    'bench',
    '--base-url',
    url,
    // nginx lists no models; the simulator answers any.
    '--model',
    CHAT_REQUEST.model,
    '--dataset-name',
    'batch',
    '--dataset-path',
    dataset,
    '--no-streaming',
    '--threads',
    String(threads),
    '--progress',
    'none',
    '--json',
    ...args,
  ]);
  return JSON.parse(stdout) as BenchJson;
}

async function autocannonRun(
  url: string,
): Promise<{ reqPerSec: number; completed: number; errors: number; cpuMsPer1k: number }> {
  const child = spawnContender('autocannon', url, { concurrency, warmup: 2000 }, count);
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.resume();
  await new Promise<void>((r, j) =>
    child.on('close', (code) => (code === 0 ? r() : j(new Error(`autocannon exited ${code}`)))),
  );
  const line = stdout.trim().split('\n').pop() as string;
  return JSON.parse(line) as {
    reqPerSec: number;
    completed: number;
    errors: number;
    cpuMsPer1k: number;
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Server CPU per 1,000 requests over one contender process (its warm-up included). */
async function withServerCpu<T>(
  server: SimServer,
  requests: number,
  body: () => Promise<T>,
): Promise<{ result: T; serverCpuMsPer1k: number | null; load1: number }> {
  const before = processCpuMs(server.pid);
  const result = await body();
  const after = processCpuMs(server.pid);
  return {
    result,
    serverCpuMsPer1k:
      before === undefined || after === undefined
        ? null
        : Math.round(((after - before) * 1000) / requests),
    load1: loadAverage()[0],
  };
}

const dir = await mkdtemp(join(tmpdir(), 'volley-bench-cmd-'));
const dataset = join(dir, 'chat.jsonl');
// The same body autocannon replays, as a one-line Batch file (bench cycles it).
await writeFile(
  dataset,
  `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: CHAT_REQUEST })}\n`,
);

interface ClosedRun {
  rep: number;
  threads: number;
  autocannon: number;
  bench: number;
  ratio: number;
  autocannonCpuMsPer1k: number;
  benchCpuMsPer1k: number;
  serverCpuMsPer1kAutocannon: number | null;
  serverCpuMsPer1kBench: number | null;
  benchCores: number;
  benchClientLimited: boolean;
  load1: number;
}
interface OpenRun {
  rep: number;
  threads: number;
  offered: number | null;
  achievedSend: number | null;
  completionRate: number;
  lagP99: number | null;
  lateFraction: number;
  dropped: number;
  clientLimited: boolean;
  reasons: string[];
}

const warmups = 2000;
const perServer: Array<{
  server: string;
  closed: ClosedRun[];
  open: OpenRun[];
}> = [];
for (const serverName of servers) {
  const server =
    serverName === 'nginx' ? await startNginx(SIM_CHAT_COMPLETION_JSON) : await startSim(CLI, 0);
  process.stderr.write(`${serverName} at ${server.url}\n`);
  const closed: ClosedRun[] = [];
  const open: OpenRun[] = [];
  try {
    for (let rep = 0; rep < reps; rep++) {
      // autocannon, then every threads setting; rotated by one each repetition.
      const who = ['autocannon', ...threadsList.map(String)];
      const order = [...who.slice(rep % who.length), ...who.slice(0, rep % who.length)];
      let a:
        | { result: Awaited<ReturnType<typeof autocannonRun>>; serverCpuMsPer1k: number | null }
        | undefined;
      const benches = new Map<
        number,
        { result: BenchJson; serverCpuMsPer1k: number | null; load1: number }
      >();
      for (const w of order) {
        process.stderr.write(
          `${serverName} rep ${rep + 1}: ${w === 'autocannon' ? 'autocannon' : `bench --threads ${w}`} closed loop c=${concurrency} n=${count}\n`,
        );
        if (w === 'autocannon')
          a = await withServerCpu(server, count + warmups, () => autocannonRun(server.url));
        else
          benches.set(
            Number(w),
            await withServerCpu(server, count + warmups, () =>
              benchRun(server.url, dataset, Number(w), [
                '--max-concurrency',
                String(concurrency),
                '--num-prompts',
                String(count),
                '--num-warmups',
                String(warmups),
              ]),
            ),
          );
      }
      const ac = a as NonNullable<typeof a>;
      for (const threads of threadsList) {
        const b = benches.get(threads) as NonNullable<ReturnType<typeof benches.get>>;
        const bench = b.result;
        closed.push({
          rep: rep + 1,
          threads,
          autocannon: Math.round(ac.result.reqPerSec),
          bench: Math.round(bench.request_throughput),
          ratio: Math.round((bench.request_throughput / ac.result.reqPerSec) * 1000) / 1000,
          autocannonCpuMsPer1k: Math.round(ac.result.cpuMsPer1k * 10) / 10,
          // Process CPU (all threads) over the run, per 1,000 completed requests.
          benchCpuMsPer1k:
            Math.round(
              ((bench.client_health.process_cpu_cores * bench.duration * 1e6) / bench.completed) *
                10,
            ) / 10,
          serverCpuMsPer1kAutocannon: ac.serverCpuMsPer1k,
          serverCpuMsPer1kBench: b.serverCpuMsPer1k,
          benchCores: bench.client_health.process_cpu_cores,
          benchClientLimited: bench.client_health.client_limited,
          load1: b.load1,
        });
      }
      for (const threads of threadsList) {
        process.stderr.write(
          `${serverName} rep ${rep + 1}: bench --threads ${threads} open loop ${rate} req/s for ${durationMs} ms\n`,
        );
        const o = await benchRun(server.url, dataset, threads, [
          '--request-rate',
          String(rate),
          '--arrival',
          'constant',
          '--duration-ms',
          String(durationMs),
        ]);
        const h = o.client_health;
        open.push({
          rep: rep + 1,
          threads,
          offered: h.offered_rate,
          achievedSend: h.achieved_send_rate,
          completionRate: o.request_throughput,
          lagP99: h.schedule_lag_p99_ms,
          lateFraction: h.late_fraction,
          dropped: h.dropped_sends,
          clientLimited: h.client_limited,
          reasons: h.reasons,
        });
      }
    }
  } finally {
    await server.stop();
  }
  perServer.push({ server: serverName, closed, open });
}

const revision = machineInfo(ROOT).git.short;
const summary = {
  date: new Date().toISOString(),
  revision,
  node: process.version,
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
  settings: { reps, count, concurrency, rate, durationMs, threads: threadsList, servers },
  results: perServer.map(({ server, closed, open }) => ({
    server,
    byThreads: threadsList.map((threads) => {
      const c = closed.filter((r) => r.threads === threads);
      const o = open.filter((r) => r.threads === threads);
      return {
        threads,
        medianRatio: median(c.map((r) => r.ratio)),
        medianBenchCpuMsPer1k: median(c.map((r) => r.benchCpuMsPer1k)),
        medianAutocannonCpuMsPer1k: median(c.map((r) => r.autocannonCpuMsPer1k)),
        medianAchievedSendRate: median(o.map((r) => r.achievedSend ?? 0)),
        medianCompletionRate: median(o.map((r) => r.completionRate)),
        medianLagP99Ms: median(o.map((r) => r.lagP99 ?? Number.NaN)),
      };
    }),
    closedLoop: closed,
    openLoop: open,
  })),
};
await writeFile(out, `${JSON.stringify(summary, null, 2)}\n`);

const lines = [
  `# volley bench vs autocannon (${summary.date}, ${revision}, node ${process.version}, ${summary.machine.cpus}× ${summary.machine.model})`,
];
for (const r of summary.results) {
  lines.push(
    '',
    `## Server: ${r.server === 'nginx' ? 'nginx (fixed answer, 0 ms)' : '`volley sim` (0 ms)'}`,
    '',
    `Closed loop, concurrency ${concurrency}, ${count} requests after ${warmups} warm-up, CPU in ms per 1,000 requests (= µs per request):`,
    '',
    '| rep | bench threads | autocannon req/s | volley bench req/s | bench / autocannon | autocannon CPU | bench CPU | bench cores | server CPU (ac / bench) | bench client-limited | load 1 min |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    ...r.closedLoop.map(
      (c) =>
        `| ${c.rep} | ${c.threads} | ${c.autocannon} | ${c.bench} | ${c.ratio} | ${c.autocannonCpuMsPer1k} | ${c.benchCpuMsPer1k} | ${c.benchCores} | ${c.serverCpuMsPer1kAutocannon} / ${c.serverCpuMsPer1kBench} | ${c.benchClientLimited} | ${c.load1} |`,
    ),
    ...r.byThreads.map(
      (t) =>
        `| median | ${t.threads} | | | ${t.medianRatio} | ${t.medianAutocannonCpuMsPer1k} | ${t.medianBenchCpuMsPer1k} | | | | |`,
    ),
    '',
    `Open loop, constant arrivals at ${rate} req/s for ${durationMs} ms:`,
    '',
    '| rep | bench threads | planned req/s | sent req/s | completed req/s | schedule lag p99 ms | late > 10 ms | dropped | client-limited |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...r.openLoop.map(
      (o) =>
        `| ${o.rep} | ${o.threads} | ${o.offered} | ${o.achievedSend} | ${o.completionRate} | ${o.lagP99} | ${(o.lateFraction * 100).toFixed(2)}% | ${o.dropped} | ${o.clientLimited}${o.clientLimited ? ` (${o.reasons.join('; ')})` : ''} |`,
    ),
  );
}
lines.push('', `JSON: ${out}`);
process.stdout.write(`${lines.join('\n')}\n`);
