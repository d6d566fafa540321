/**
 * wrk: the HTTP ceiling in C, one thread, C connections, replaying the same request bytes and
 * parsing nothing; with the nginx reference server it shows what the box can do when neither side
 * is Node. wrk runs for a duration, not a count: count / 5,000 seconds (at least 2 s), after a 1 s
 * warm-up run. Its CPU is read from /proc once it has exited (it is a child of this process).
 * Opt-in (`--contenders wrk`): it needs the wrk binary (installed as root with apt-get).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOrInstall } from '../../shared/nginx.js';
import type { ContenderResult } from '../harness.js';
import {
  exitWhenFlushed,
  parseContenderArgs,
  report,
  round,
  shortChatOnly,
  WINDOW_END,
  WINDOW_START,
} from '../harness.js';
import { exitedChildrenCpuMs } from '../proc-stats.js';
import { CHAT_REQUEST_JSON, chatCompletionsUrl } from '../workload.js';

const args = parseContenderArgs();
shortChatOnly('wrk', args);
const binary = findOrInstall('wrk', 'wrk');
const dir = await mkdtemp(join(tmpdir(), 'volley-bench-wrk-'));
const script = join(dir, 'post.lua');
// Lua long brackets: the JSON needs no escaping.
await writeFile(
  script,
  `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[${CHAT_REQUEST_JSON}]==]\n`,
);

async function wrk(seconds: number): Promise<string> {
  const child = spawn(
    binary,
    [
      '-t1',
      `-c${args.concurrency}`,
      `-d${seconds}s`,
      '--latency',
      '-s',
      script,
      chatCompletionsUrl(args.url).href,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`wrk exited with ${String(code)}: ${output}`);
  return output;
}

/** wrk prints latencies as `812.00us`, `4.89ms` or `1.02s`. */
function ms(text: string | undefined): number {
  const match = /([\d.]+)(us|ms|s)/.exec(text ?? '');
  if (match === null) return 0;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

function count(output: string, pattern: RegExp): number {
  return Number(pattern.exec(output)?.[1] ?? 0);
}

await wrk(1);
const seconds = Math.max(2, Math.round(args.count / 5000));
process.stderr.write(`${WINDOW_START}\n`);
const cpuBefore = exitedChildrenCpuMs();
const started = performance.now();
const output = await wrk(seconds);
const wallMs = performance.now() - started;
const cpuMs = exitedChildrenCpuMs() - cpuBefore;
process.stderr.write(`${WINDOW_END}\n`);
await rm(dir, { recursive: true, force: true });

const requests = count(output, /(\d+) requests in/);
const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
  .exec(output)
  ?.slice(1)
  .reduce((sum, n) => sum + Number(n), 0);
const non2xx = count(output, /Non-2xx or 3xx responses: (\d+)/);
const errors = non2xx + (socketErrors ?? 0);
const completed = requests - non2xx;
const result: ContenderResult = {
  contender: 'wrk',
  concurrency: args.concurrency,
  count: args.count,
  warmup: args.warmup,
  completed,
  errors,
  wallMs: round(wallMs, 1),
  reqPerSec: round((completed / wallMs) * 1000, 1),
  // /proc gives user+system together, in 10 ms ticks.
  cpuUserMs: round(cpuMs, 1),
  cpuSystemMs: 0,
  cpuMsPer1k: completed > 0 ? round((cpuMs / completed) * 1000, 2) : 0,
  clientCores: round(cpuMs / wallMs, 3),
  latencyP50Ms: round(ms(/ 50%\s+(\S+)/.exec(output)?.[1]), 3),
  latencyP99Ms: round(ms(/ 99%\s+(\S+)/.exec(output)?.[1]), 3),
  latencyMaxMs: round(ms(/Latency(?:\s+\S+){2}\s+(\S+)/.exec(output)?.[1]), 3),
  eventLoopDelayP99Ms: 0,
  // wrk's memory is its own process's, not read here.
  maxRssMb: 0,
  extra: { durationS: seconds, threads: 1 },
};
if (errors > 0) result.firstError = output.trim().split('\n').slice(-4).join(' | ');
report(result);
exitWhenFlushed();
