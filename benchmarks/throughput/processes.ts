/**
 * The benchmark's child processes. The load server is `volley sim` in its own process, so its CPU
 * is not the client's and can be read from /proc; it prints its base URL as the first stdout line.
 * Each contender runs in a process of its own too, so no two share a heap, a loop or a JIT.
 */
import type { ChildProcess, ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Scenario } from './scenarios.js';
import type { WorkloadName } from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * `node --import tsx <script> ...args` with the benchmarks folder as working directory, stdin,
 * stdout and stderr piped.
 */
export function spawnScript(
  script: string,
  args: readonly (string | number)[],
  env: NodeJS.ProcessEnv = process.env,
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', script, ...args.map(String)], {
    cwd: dirname(HERE),
    stdio: 'pipe',
    env,
  });
}

/**
 * Runs `script` with `spec` as its JSON argument and resolves with the JSON it prints on stdout
 * (the contender processes of benchmarks/adaptive and benchmarks/hedging).
 */
export function runJsonScript<Result>(script: string, spec: unknown): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawnScript(script, [JSON.stringify(spec)]);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr
      .setEncoding('utf8')
      .on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolvePromise(JSON.parse(stdout) as Result)
        : reject(new Error(`${script} exited ${code}: ${stderr}`)),
    );
  });
}

/** Starts `contenders/<contender>.ts` against `url` with the scenario's load. */
export function spawnContender(
  contender: string,
  url: string,
  scenario: Pick<Scenario, 'concurrency' | 'warmup'>,
  count: number,
  env: NodeJS.ProcessEnv = process.env,
  workload: WorkloadName = 'short-chat',
): ChildProcessWithoutNullStreams {
  return spawnScript(
    join(HERE, 'contenders', `${contender}.ts`),
    [url, scenario.concurrency, count, scenario.warmup, workload],
    env,
  );
}

export interface SimServer {
  url: string;
  pid: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `node <cliBin> sim --port 0 [--latency-ms N] [...extraArgs]`. `cliBin` is normally
 * `packages/cli/bin/volley.js`; any script taking the same arguments and printing its URL first
 * will do (the embeddings benchmark's float server adds an option the CLI does not expose).
 */
export async function startSim(
  cliBin: string,
  latencyMs: number,
  timeoutMs = 15_000,
  extraArgs: readonly string[] = [],
): Promise<SimServer> {
  const args = [cliBin, 'sim', '--port', '0'];
  // 0 ms is left to the default, which runs no timer per request at all.
  if (latencyMs > 0) args.push('--latency-ms', String(latencyMs));
  args.push(...extraArgs);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`volley sim printed no URL within ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`volley sim exited with ${String(code)} before printing its URL: ${stderr}`),
      );
    });
  });
  lines.close();
  // Keep draining stdout so the server can never block on a full pipe.
  child.stdout.resume();
  if (child.pid === undefined) throw new Error('volley sim has no pid');
  return { url, pid: child.pid, stop: () => stopChild(child), process: child };
}

/** SIGTERM, then SIGKILL if the process has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
