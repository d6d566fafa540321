/**
 * Chunks changing hands, on the shared Redis (a prefix of its own per test): a lapsed chunk
 * behind many live ones (XAUTOCLAIM looks at a bounded part of the pending list per call), a
 * chunk lost and claimed back, a rebuild cut off half-way, and a chunk whose first lines its dead
 * worker had answered. Each of these once left a batch waiting forever.
 */
import type { AddressInfo, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { BatchCoordinatorOptions, WorkerReport } from '../src/index.js';
import { BatchCoordinator, WorkServer } from '../src/index.js';
import { batchKeys, WORK_GROUP } from '../src/work-keys.js';
import { defineWorkScripts } from '../src/work-scripts.js';
import { dropKeys, inspector, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';

const redis = inspector();
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * A batch of `lines` lines submitted to a coordinator of its own (closed and its keys dropped
 * after the test); the lines' promises, whose rejection at close is expected.
 */
async function submitted(
  options: Omit<BatchCoordinatorOptions, 'url'> & { url?: string },
  lines: number,
): Promise<{ coordinator: BatchCoordinator; settled: Array<Promise<WorkerReport>> }> {
  const coordinator = await BatchCoordinator.open({ url: SHARED_REDIS, ...options });
  cleanups.push(async () => {
    await coordinator.close(false);
    await dropKeys(redis, options.prefix ?? 'volley');
  });
  const settled = Array.from({ length: lines }, (_, i) =>
    coordinator.submit({ i, u: '/v1/chat/completions', b: { n: i } }),
  );
  for (const pending of settled) pending.catch(() => undefined);
  return { coordinator, settled };
}

/** A worker of `prefix` (concurrency 4) answering every line at once, closed after the test. */
async function answeringWorker(prefix: string): Promise<{ server: WorkServer; served: number[] }> {
  const served: number[] = [];
  const server = await WorkServer.start({
    url: SHARED_REDIS,
    prefix,
    concurrency: 4,
    pollMs: 50,
    runLine: async (line) => {
      served.push(line.i);
      return { ok: { line: line.i } };
    },
  });
  cleanups.push(() => server.close());
  return { server, served };
}

/** Every one of `pending`, or 'still waiting' after 10 s: a hang fails the test, not its timeout. */
function allWithin10s<T>(pending: Array<Promise<T>>): Promise<T[] | 'still waiting'> {
  return Promise.race([Promise.all(pending), sleep(10_000).then(() => 'still waiting' as const)]);
}

describe('a chunk whose lease lapsed behind chunks live workers hold', () => {
  it('is taken over however far down the pending list it is', async () => {
    const prefix = uniquePrefix('takeover');
    const batch = 'b1';
    const leaseMs = 600;
    const lines = 15;
    const { settled } = await submitted({ prefix, batch, chunkLines: 1, leaseMs }, lines);
    const { work } = batchKeys(prefix, batch);
    for (let i = 0; i < 100 && (await redis.xlen(work)) < lines; i++) await sleep(20);
    expect(await redis.xlen(work)).toBe(lines);

    // A live worker holds the first 12 chunks and keeps renewing them; a dead one took the
    // last 3 and went silent.
    const held = (await redis.xreadgroup(
      'GROUP',
      WORK_GROUP,
      'live',
      'COUNT',
      12,
      'STREAMS',
      work,
      '>',
    )) as Array<[string, Array<[string, string[]]>]>;
    const liveIds = held[0]?.[1].map(([id]) => id) ?? [];
    expect(liveIds).toHaveLength(12);
    await redis.xreadgroup('GROUP', WORK_GROUP, 'dead', 'COUNT', 3, 'STREAMS', work, '>');
    const renew = setInterval(() => {
      redis.xclaim(work, WORK_GROUP, 'live', 0, ...liveIds, 'JUSTID').catch(() => undefined);
    }, leaseMs / 4);
    cleanups.push(async () => clearInterval(renew));

    const { server, served } = await answeringWorker(prefix);

    expect(await allWithin10s(settled.slice(12))).not.toBe('still waiting');
    expect(served.sort((a, b) => a - b)).toEqual([12, 13, 14]);
    expect(server.stats().takeovers).toBe(3);
  }, 20_000);
});

describe('a chunk this worker lost and then claimed again while its first lines were in flight', () => {
  it('reports every line and frees every slot (each copy of the chunk settles on its own)', async () => {
    const prefix = uniquePrefix('reclaim');
    const batch = 'b2';
    const leaseMs = 600;
    const { settled } = await submitted({ prefix, batch, chunkLines: 4, leaseMs }, 8);

    // Lines of the first chunk wait for the gate; the second chunk's answer at once.
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const started: number[] = [];
    const said: string[] = [];
    const server = await WorkServer.start({
      url: SHARED_REDIS,
      prefix,
      concurrency: 8,
      pollMs: 50,
      log: (m) => said.push(m),
      runLine: async (line) => {
        started.push(line.i);
        if (line.i < 4) await gate;
        return { ok: { line: line.i } };
      },
    });
    cleanups.push(() => server.close());
    const until = async (what: () => boolean): Promise<void> => {
      for (let i = 0; i < 250 && !what(); i++) await sleep(20);
      expect(what()).toBe(true);
    };
    await until(() => [0, 1, 2, 3].every((i) => started.includes(i)));

    // Another consumer takes the first chunk from under it, then goes silent.
    const { work } = batchKeys(prefix, batch);
    const pending = (await redis.xpending(work, WORK_GROUP, '-', '+', 10)) as Array<
      [string, string]
    >;
    const first = pending.map(([id]) => id).sort()[0] as string;
    await redis.xclaim(work, WORK_GROUP, 'thief', 0, first, 'JUSTID');
    await until(() => said.some((m) => m.includes('lost the lease')));
    // Its lease lapses again: this worker claims the chunk back, its first lines still out.
    await until(() => said.some((m) => m.includes(`took over chunk ${first}`)));
    open();

    const reports = await Promise.all(settled.slice(0, 8));
    expect(reports.map((r) => r.i).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await until(() => server.stats().holding === 0 && server.stats().inFlight === 0);
  }, 20_000);
});

/**
 * A TCP proxy in front of Redis that, once armed, forwards the first command holding `marker`
 * and then cuts the connection before its reply comes back: the command ran, its caller never
 * learns it did.
 */
async function cuttingProxy(
  target: { host: string; port: number },
  marker: string,
): Promise<{ url: string; arm(): void; cut: Promise<void>; close(): Promise<void> }> {
  let armed = false;
  let onCut: () => void = () => undefined;
  const cut = new Promise<void>((resolve) => {
    onCut = resolve;
  });
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    upstream.on('data', (data) => client.write(data));
    client.on('data', (data) => {
      upstream.write(data);
      if (armed && data.includes(marker)) {
        armed = false;
        client.pause();
        upstream.removeAllListeners('data');
        // Long enough for Redis to run it; the reply goes nowhere.
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
          onCut();
        }, 100);
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    arm: () => {
      armed = true;
    },
    cut,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('a batch rebuilt after Redis lost its keys, the rebuild cut off half-way', () => {
  it('sends the pending lines out again on the next beat', async () => {
    const prefix = uniquePrefix('rebuild');
    const batch = 'b3';
    // The batch's (re)creation names its start time: the proxy cuts right after that command.
    const proxy = await cuttingProxy({ host: '127.0.0.1', port: 6379 }, 'startedAt');
    cleanups.push(() => proxy.close());
    const { coordinator, settled } = await submitted(
      { url: proxy.url, prefix, batch, chunkLines: 2 },
      4,
    );
    const keys = batchKeys(prefix, batch);
    for (let i = 0; i < 100 && (await redis.xlen(keys.work)) < 2; i++) await sleep(20);

    // Redis loses the batch; the coordinator's rebuild runs in Redis but its reply is lost.
    proxy.arm();
    await redis.del(keys.meta, keys.work, keys.lines, keys.results);
    await Promise.race([proxy.cut, sleep(5_000)]);

    await answeringWorker(prefix);
    expect(await allWithin10s(settled)).not.toBe('still waiting');
    expect(coordinator.report().resentLines).toBeGreaterThanOrEqual(4);
  }, 20_000);
});

describe('a chunk taken over from a worker that had answered its first lines, then died', () => {
  it('runs the rest of the chunk, however many of its lines were answered', async () => {
    const prefix = uniquePrefix('answered');
    const batch = 'b4';
    const leaseMs = 600;
    const ttlMs = 60_000;
    const { settled } = await submitted({ prefix, batch, chunkLines: 6, leaseMs }, 6);
    const keys = batchKeys(prefix, batch);
    for (let i = 0; i < 100 && (await redis.xlen(keys.work)) < 1; i++) await sleep(20);

    // The dead worker: took the chunk, sent lines 0-3 and reported them, then went silent. They
    // are as many as the next worker's concurrency, so its first group finds all answered.
    const dead = defineWorkScripts(inspector());
    cleanups.push(async () => dead.disconnect());
    const read = (await dead.xreadgroup(
      'GROUP',
      WORK_GROUP,
      'dead',
      'COUNT',
      1,
      'STREAMS',
      keys.work,
      '>',
    )) as Array<[string, Array<[string, string[]]>]>;
    const chunk = read[0]?.[1][0]?.[0] as string;
    const answered = ['0', '1', '2', '3'];
    await dead.volleyWorkStart(
      keys.work,
      keys.lines,
      WORK_GROUP,
      'dead',
      chunk,
      ttlMs,
      ...answered,
    );
    const pairs = answered.flatMap((i) => [i, JSON.stringify({ ok: { line: i }, i: Number(i) })]);
    await dead.volleyWorkReport(
      keys.lines,
      keys.results,
      keys.meta,
      ttlMs,
      'dead',
      chunk,
      0,
      ...pairs,
    );

    const { server, served } = await answeringWorker(prefix);
    expect(await allWithin10s(settled)).not.toBe('still waiting');
    expect(served.sort((a, b) => a - b)).toEqual([4, 5]);
    expect(server.stats().takeovers).toBe(1);
  }, 20_000);
});

describe('a worker that cannot send (its endpoints out) gives its chunks back', () => {
  it('rests before taking another, so a worker that can send gets them', async () => {
    const prefix = uniquePrefix('rest');
    const { settled } = await submitted({ prefix, batch: 'b5', chunkLines: 2 }, 8);
    const out = await WorkServer.start({
      url: SHARED_REDIS,
      prefix,
      concurrency: 4,
      pollMs: 20,
      runLine: async () => 'unsent',
    });
    cleanups.push(() => out.close());
    await sleep(1_500);
    // Without the rest it claimed the chunk it had just released again and again (hundreds).
    const takenWhileAlone = out.stats().chunks;
    expect(takenWhileAlone).toBeGreaterThan(0);
    expect(takenWhileAlone).toBeLessThanOrEqual(4);

    const { served } = await answeringWorker(prefix);
    expect(await allWithin10s(settled)).not.toBe('still waiting');
    expect(served.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  }, 20_000);
});
