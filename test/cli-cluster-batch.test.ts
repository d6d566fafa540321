/**
 * One batch over many processes: `volley run --cluster` (the coordinator, the only writer) and
 * `volley worker --cluster` processes, on a redis-server of the test's own (the CLI uses the
 * default key prefix; two tests stop or restart it), against one simulator. Every test checks
 * the one promise that matters: each input line ends as exactly one record.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterEach, describe, expect, it } from 'vitest';
import type { OwnRedis } from '../packages/cluster/test/helpers/redis.js';
import { inspector, startOwnRedis } from '../packages/cluster/test/helpers/redis.js';
import type { CliProcess } from './cli-process.js';
import { countLines, startCli } from './cli-process.js';
import type { TempDir } from './helpers.js';
import { freePort, parseJsonl, runCli, tempDir, writeBatch } from './helpers.js';

let redis: OwnRedis | undefined;
let sim: Simulator | undefined;
let dir: TempDir | undefined;
const started: CliProcess[] = [];
const slowSims: Simulator[] = [];

afterEach(async (context) => {
  if (context.task.result?.state !== 'pass' && redis !== undefined) {
    // A run that failed or hung: what each process said, and what Redis holds, before the end.
    const status = await runCli(['cluster', 'status', '--json'], env()).catch(String);
    const told = started.map(
      (p) => `--- ${p.child.spawnargs.slice(2, 4).join(' ')} (pid ${p.child.pid}):\n${p.stderr()}`,
    );
    process.stderr.write(`${told.join('\n')}\n--- cluster status:\n${JSON.stringify(status)}\n`);
  }
  for (const p of started.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGCONT');
      p.child.kill('SIGKILL');
      await p.exited;
    }
  }
  await sim?.close();
  for (const slow of slowSims.splice(0)) await slow.close();
  await redis?.stop();
  await dir?.[Symbol.asyncDispose]();
  sim = undefined;
  redis = undefined;
  dir = undefined;
});

interface Split {
  byWorker: Record<string, { lines: number; succeeded: number; failed: number }>;
  duplicatesDropped: number;
  resentLines: number;
  recovered: number;
  chunks: number;
}

async function setUp(lines: number, headersMs: number): Promise<{ input: string; out: string }> {
  redis = await startOwnRedis();
  sim = await createSimulator({ latency: { headersMs }, logBodies: false });
  dir = await tempDir();
  const input = join(dir.path, 'in.jsonl');
  await writeBatch(input, lines);
  return { input, out: join(dir.path, 'out.jsonl') };
}

function env(): Record<string, string> {
  return { OPENAI_BASE_URL: sim?.url ?? '', VOLLEY_CLUSTER_URL: redis?.url ?? '' };
}

function worker(extra: string[] = []): CliProcess {
  const p = startCli(['worker', '--concurrency', '16', ...extra], { env: env() });
  started.push(p);
  return p;
}

/**
 * A worker with a server of its own that answers after `headersMs`: whenever the test acts on
 * it, it certainly has lines on the wire and lines not yet started.
 */
async function slowWorker(
  headersMs: number,
  extra: string[] = [],
): Promise<[CliProcess, Simulator]> {
  const slow = await createSimulator({ latency: { headersMs }, logBodies: false });
  slowSims.push(slow);
  const p = startCli(['worker', '--concurrency', '16', ...extra], {
    env: { ...env(), OPENAI_BASE_URL: slow.url },
  });
  started.push(p);
  return [p, slow];
}

/** Waits until each worker says it serves the cluster (bounded): started, connected, polling. */
async function untilServing(...workers: CliProcess[]): Promise<void> {
  const serving = (w: CliProcess) => /serving the cluster/.test(w.stderr());
  for (let i = 0; i < 600 && !workers.every(serving); i++) await sleep(50);
  for (const w of workers) expect(w.stderr()).toMatch(/serving the cluster/);
}

/** Waits until `server` has received a request (bounded): its worker holds a chunk. */
async function untilServed(server: Simulator): Promise<void> {
  for (let i = 0; i < 400 && server.stats().requests === 0; i++) await sleep(25);
  expect(server.stats().requests).toBeGreaterThan(0);
}

function coordinator(input: string, out: string, extra: string[] = []): CliProcess {
  const p = startCli(
    ['run', input, '-o', out, '--progress', 'none', '--json', '--chunk-lines', '25', ...extra],
    { env: env() },
  );
  started.push(p);
  return p;
}

/** Waits until `path` holds at least `n` lines (bounded). */
async function untilLines(path: string, n: number): Promise<void> {
  for (let i = 0; i < 600 && (await countLines(path)) < n; i++) await sleep(50);
  expect(await countLines(path)).toBeGreaterThanOrEqual(n);
}

/** Every custom_id of the input exactly once across results and errors, every record whole. */
async function expectExactlyOnce(out: string, lines: number): Promise<void> {
  const records = parseJsonl(await readFile(out, 'utf8'));
  const errorsPath = out.replace(/\.jsonl$/, '.errors.jsonl');
  const errors = parseJsonl(await readFile(errorsPath, 'utf8').catch(() => ''));
  expect(errors).toEqual([]);
  const ids = records.map((r) => r.custom_id as string);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.sort()).toEqual(Array.from({ length: lines }, (_, i) => `req-${i}`).sort());
  for (const record of records) {
    expect((record.response as { status_code: number }).status_code).toBe(200);
  }
}

async function batchKeysLeft(url: string): Promise<string[]> {
  const look = inspector(url);
  try {
    const keys = await look.keys('*');
    return keys.filter((k) => k.startsWith('{volley:b:') || k === 'volley:batches');
  } finally {
    look.disconnect();
  }
}

/** `promise`, or a failure naming what hung and what the processes said. */
async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the coordinator and the workers have said so far: the story of a run that hangs. */
function said(run: CliProcess, workers: CliProcess[]): string {
  const parts = workers.map((w, n) => `worker ${n} (pid ${w.child.pid}):\n${w.stderr()}`);
  return [`coordinator (pid ${run.child.pid}):\n${run.stderr()}`, ...parts].join('\n');
}

async function stopWorkers(workers: CliProcess[]): Promise<void> {
  for (const w of workers) w.child.kill('SIGTERM');
  for (const w of workers) expect((await w.exited).code).toBe(143);
}

describe('one batch over many processes (volley run --cluster, volley worker)', () => {
  it('a coordinator and two workers, in both modes: every line once, the split per worker, nothing left in Redis', async () => {
    // 600 lines over 48 slots at 300 ms: about 4 s, time for a look at the cluster meanwhile.
    const { input, out } = await setUp(600, 300);
    const workers = [worker(['--mode', 'threads', '--threads', '2']), worker(['--mode', 'async'])];
    await untilServing(...workers);
    const running = coordinator(input, out, ['--concurrency', '16']);
    // While it runs, `volley cluster status` lists the batch and the three workers' load. Each
    // look starts a process (seconds on a loaded machine): first wait for the batch and the
    // coordinator's own worker to be in Redis, then look once.
    const look = inspector(redis?.url ?? '');
    try {
      for (let i = 0; i < 400; i++) {
        const [batches, workerKeys] = await Promise.all([
          look.zcard('volley:batches'),
          look.keys('volley:worker:*'),
        ]);
        if (batches > 0 && workerKeys.length >= 3) break;
        await sleep(25);
      }
    } finally {
      look.disconnect();
    }
    const seen = await runCli(['cluster', 'status', '--json'], env());
    expect(seen.code, seen.stderr).toBe(0);
    const status = JSON.parse(seen.stdout) as {
      batches: Array<{ chunkLines: number }>;
      workers: Array<{ mode?: string }>;
    };
    expect(status.batches).toEqual([expect.objectContaining({ chunkLines: 25 })]);
    expect(status.workers).toHaveLength(3);
    expect(status.workers.map((w) => w.mode).sort()).toEqual(['async', 'auto', 'threads']);
    const run = await running.exited;
    expect(run.code, run.stderr).toBe(0);
    await expectExactlyOnce(out, 600);
    const summary = JSON.parse(run.stdout) as { succeeded: number; cluster: Split };
    expect(summary.succeeded).toBe(600);
    const shares = Object.entries(summary.cluster.byWorker);
    expect(shares).toHaveLength(3);
    expect(shares.filter(([name]) => name.endsWith('(coordinator)'))).toHaveLength(1);
    for (const [, share] of shares) expect(share.lines).toBeGreaterThan(0);
    expect(shares.reduce((n, [, s]) => n + s.lines, 0)).toBe(600);
    expect(run.stderr).toMatch(/\(coordinator\): \d+ lines/);
    expect(sim?.stats().requests).toBe(600);
    expect(await batchKeysLeft(redis?.url ?? '')).toEqual([]);
    await stopWorkers(workers);
  }, 60_000);

  it('--cluster-prefix keeps two clusters on one Redis apart', async () => {
    const { input, out } = await setUp(300, 50);
    const other = worker(); // the default prefix: must never see this batch
    await untilServing(other);
    // No worker of team-a yet, and the coordinator does no work of its own: the batch waits.
    const running = coordinator(input, out, ['--cluster-prefix', 'team-a', '--no-local-work']);
    const teamA = { ...env(), VOLLEY_CLUSTER_PREFIX: 'team-a' };
    let listed = { batches: [] as unknown[], workers: [] as unknown[] };
    for (let i = 0; i < 100 && listed.batches.length === 0; i++) {
      const look = await runCli(['cluster', 'status', '--json'], teamA);
      expect(look.code, look.stderr).toBe(0);
      listed = JSON.parse(look.stdout) as typeof listed;
    }
    expect(listed).toMatchObject({ batches: [expect.anything()], workers: [] });
    const defaultView = JSON.parse((await runCli(['cluster', 'status', '--json'], env())).stdout);
    expect(defaultView).toMatchObject({ batches: [], workers: [expect.anything()] });
    const ours = startCli(['worker', '--concurrency', '16', '--cluster-prefix', 'team-a'], {
      env: env(),
    });
    started.push(ours);
    await untilServing(ours);
    const withOurs = JSON.parse((await runCli(['cluster', 'status', '--json'], teamA)).stdout);
    expect(withOurs.workers).toHaveLength(1);
    const run = await running.exited;
    expect(run.code, run.stderr).toBe(0);
    await expectExactlyOnce(out, 300);
    const { cluster } = JSON.parse(run.stdout) as { cluster: Split };
    expect(Object.keys(cluster.byWorker)).toHaveLength(1);
    const look = inspector(redis?.url ?? '');
    try {
      expect([...(await look.keys('{team-a:b:*')), ...(await look.keys('team-a:batches'))]).toEqual(
        [],
      );
    } finally {
      look.disconnect();
    }
    await stopWorkers([other, ours]);
  }, 60_000);

  it('a worker killed with SIGKILL mid-chunk: its chunk is taken over; re-sent lines counted', async () => {
    const { input, out } = await setUp(400, 40);
    const [doomed, doomedSim] = await slowWorker(3_000);
    const survivor = worker();
    await untilServing(doomed, survivor);
    const run = coordinator(input, out, ['--no-local-work', '--lease-ms', '1500']);
    await untilLines(out, 80);
    await untilServed(doomedSim);
    doomed.child.kill('SIGKILL');
    const result = await run.exited;
    expect(result.code, result.stderr).toBe(0);
    await expectExactlyOnce(out, 400);
    const { cluster } = JSON.parse(result.stdout) as { cluster: Split; extraBilledCalls: number };
    // The killed worker had at most its concurrency (16) on the wire: those may be billed twice.
    expect(cluster.resentLines).toBeLessThanOrEqual(16);
    // It had sent some (its server saw them): each of those counted, none more.
    expect(doomedSim.stats().requests).toBeGreaterThan(0);
    const extraCalls = (sim?.stats().requests ?? 0) + doomedSim.stats().requests - 400;
    expect(extraCalls).toBeLessThanOrEqual(cluster.resentLines);
    expect(survivor.stderr()).toMatch(/took over chunk/);
    await stopWorkers([survivor]);
  }, 60_000);

  it('a worker stopped with SIGTERM finishes its lines in flight and releases its chunks at once', async () => {
    const { input, out } = await setUp(400, 40);
    // Its own slow server: it certainly holds lines not yet started when the signal comes.
    const slow = await createSimulator({ latency: { headersMs: 400 }, logBodies: false });
    const leaving = startCli(['worker', '--json', '--concurrency', '4'], {
      env: { ...env(), OPENAI_BASE_URL: slow.url },
    });
    started.push(leaving);
    const staying = worker();
    await untilServing(staying);
    // A lease longer than the test's timeout: only a release lets the other worker take over.
    const run = coordinator(input, out, [
      '--no-local-work',
      '--lease-ms',
      '600000',
      '--chunk-lines',
      '100',
    ]);
    await untilLines(out, 40);
    await untilServed(slow);
    leaving.child.kill('SIGTERM');
    const left = await leaving.exited;
    expect(left.code, left.stderr).toBe(143);
    expect(JSON.parse(left.stdout)).toMatchObject({ exitCode: 143, leasesLost: 0 });
    const result = await within(run.exited, 30_000, () => run.stderr());
    expect(result.code, result.stderr).toBe(0);
    await expectExactlyOnce(out, 400);
    const { cluster } = JSON.parse(result.stdout) as { cluster: Split };
    // Drained, not killed: nothing was sent twice.
    expect(cluster.resentLines).toBe(0);
    expect((sim?.stats().requests ?? 0) + slow.stats().requests).toBe(400);
    expect(staying.stderr()).toMatch(/took over chunk/);
    await slow.close();
    await stopWorkers([staying]);
  }, 60_000);

  it('a worker paused (SIGSTOP) past its lease, then resumed: its late results are not written twice', async () => {
    const { input, out } = await setUp(400, 40);
    const [paused, pausedSim] = await slowWorker(600);
    const other = worker();
    await untilServing(paused, other);
    const run = coordinator(input, out, ['--no-local-work', '--lease-ms', '1000']);
    await untilLines(out, 80);
    await untilServed(pausedSim);
    paused.child.kill('SIGSTOP');
    await sleep(2_500);
    paused.child.kill('SIGCONT');
    const result = await run.exited;
    expect(result.code, result.stderr).toBe(0);
    await expectExactlyOnce(out, 400);
    expect(other.stderr()).toMatch(/took over chunk/);
    await stopWorkers([paused, other]);
    expect(paused.stderr()).toMatch(/lost the lease of chunk/);
    // Its late reports brought back no key of the finished batch.
    expect(await batchKeysLeft(redis?.url ?? '')).toEqual([]);
  }, 60_000);

  it('the coordinator killed with kill -9: --resume writes what Redis still holds, sends nothing twice', async () => {
    const { input, out } = await setUp(500, 30);
    const workers = [worker(), worker()];
    await untilServing(...workers);
    const first = coordinator(input, out, ['--no-local-work']);
    await untilLines(out, 100);
    first.child.kill('SIGKILL');
    await first.exited;
    // The workers keep working on what they hold; their results wait in Redis.
    await sleep(1_000);
    const second = await coordinator(input, out, ['--no-local-work', '--resume']).exited;
    expect(second.code, second.stderr).toBe(0);
    await expectExactlyOnce(out, 500);
    const { cluster } = JSON.parse(second.stdout) as { cluster: Split };
    expect(cluster.recovered).toBeGreaterThan(0);
    // Nothing lapsed: not one line was sent twice.
    expect(sim?.stats().requests).toBe(500);
    expect(await batchKeysLeft(redis?.url ?? '')).toEqual([]);
    await stopWorkers(workers);
  }, 60_000);

  it('the coordinator interrupted (SIGINT): exit 130, results arriving meanwhile wait in Redis for --resume', async () => {
    const { input, out } = await setUp(500, 30);
    const workers = [worker(), worker()];
    await untilServing(...workers);
    const first = coordinator(input, out, ['--concurrency', '8']);
    await untilLines(out, 100);
    first.child.kill('SIGINT');
    expect((await first.exited).code).toBe(130);
    const second = await coordinator(input, out, ['--resume']).exited;
    expect(second.code, second.stderr).toBe(0);
    await expectExactlyOnce(out, 500);
    // What the workers answered after the interrupt was written from Redis, not sent again.
    expect(sim?.stats().requests).toBe(500);
    expect(await batchKeysLeft(redis?.url ?? '')).toEqual([]);
    await stopWorkers(workers);
  }, 60_000);

  it('Redis unanswering for 10 s mid-run (its data kept): the batch waits and completes, re-sent lines counted', async () => {
    const { input, out } = await setUp(500, 30);
    const workers = [worker(), worker()];
    await untilServing(...workers);
    const run = coordinator(input, out);
    await untilLines(out, 100);
    redis?.pause();
    await sleep(10_000);
    redis?.resume();
    const result = await run.exited;
    expect(result.code, result.stderr).toBe(0);
    await expectExactlyOnce(out, 500);
    const { cluster } = JSON.parse(result.stdout) as { cluster: Split };
    // Every line the server saw twice is one the summary counts as re-sent (possibly billed
    // twice). On a quiet machine that is none: leases (30 s) outlast the pause.
    expect((sim?.stats().requests ?? 0) - 500).toBeLessThanOrEqual(cluster.resentLines);
    expect(await batchKeysLeft(redis?.url ?? '')).toEqual([]);
    await stopWorkers(workers);
  }, 90_000);

  it('Redis restarted mid-run (its data lost): the batch is rebuilt and completes, re-sent lines counted', async () => {
    const { input, out } = await setUp(500, 30);
    const workers = [worker(), worker()];
    await untilServing(...workers);
    const run = coordinator(input, out);
    await untilLines(out, 100);
    await redis?.stop();
    await sleep(1_500);
    await redis?.start();
    const result = await within(run.exited, 60_000, () => said(run, workers));
    expect(result.code, result.stderr).toBe(0);
    await expectExactlyOnce(out, 500);
    const { cluster } = JSON.parse(result.stdout) as { cluster: Split };
    expect(result.stderr).toMatch(/Redis lost the batch's keys/);
    expect(cluster.resentLines).toBeGreaterThan(0);
    expect((sim?.stats().requests ?? 0) - 500).toBeLessThanOrEqual(cluster.resentLines);
    await stopWorkers(workers);
  }, 90_000);

  it('a worker whose endpoint refuses connections releases its chunks and exits 3; nothing is sent twice', async () => {
    const { input, out } = await setUp(300, 5);
    const dead = startCli(
      ['worker', '--base-url', `http://127.0.0.1:${await freePort()}/v1`, '--concurrency', '16'],
      { env: { VOLLEY_CLUSTER_URL: redis?.url ?? '' } },
    );
    started.push(dead);
    await untilServing(dead);
    const run = coordinator(input, out, ['--no-local-work']);
    // Alone, it takes a chunk, finds its endpoint out, gives the chunk back and leaves.
    const gone = await within(dead.exited, 30_000, () => dead.stderr());
    expect(gone.code, gone.stderr).toBe(3);
    expect(gone.stderr).toMatch(/every endpoint is out/);
    const healthy = worker();
    const result = await within(run.exited, 30_000, () => `${run.stderr()}\n${healthy.stderr()}`);
    expect(result.code, result.stderr).toBe(0);
    await expectExactlyOnce(out, 300);
    const { cluster } = JSON.parse(result.stdout) as { cluster: Split };
    // The server saw each line once; what the dead worker had started is at most "maybe" twice.
    expect(sim?.stats().requests).toBe(300);
    expect(cluster.resentLines).toBeLessThanOrEqual(16);
    await stopWorkers([healthy]);
  }, 60_000);

  it('a cluster that cannot be reached at start: exit 2 for run and worker, nothing sent', async () => {
    sim = await createSimulator({ logBodies: false });
    dir = await tempDir();
    const input = join(dir.path, 'in.jsonl');
    await writeBatch(input, 3);
    const url = `redis://127.0.0.1:${await freePort()}`;
    const base = { OPENAI_BASE_URL: sim.url, VOLLEY_CLUSTER_URL: url };
    const run = await runCli(['run', input, '-o', join(dir.path, 'o.jsonl')], base);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/cannot reach Redis/);
    const served = await runCli(['worker'], base);
    expect(served.code, served.stderr).toBe(2);
    expect(sim.stats().requests).toBe(0);
  }, 30_000);
});
