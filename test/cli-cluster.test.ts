/**
 * The CLI's cluster parts, on a redis-server of the test's own (the CLI uses the default key
 * prefix): two `volley run --cluster` processes share one limit, and `volley cluster status`
 * shows the members and the shared bucket while they run.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterEach, describe, expect, it } from 'vitest';
import type { OwnRedis } from '../packages/cluster/test/helpers/redis.js';
import { startOwnRedis } from '../packages/cluster/test/helpers/redis.js';
import { startCli } from './cli-process.js';
import type { TempDir } from './helpers.js';
import { runCli, tempDir, writeBatch } from './helpers.js';

let redis: OwnRedis | undefined;
let sim: Simulator | undefined;
let dir: TempDir | undefined;

afterEach(async () => {
  await sim?.close();
  await redis?.stop();
  await dir?.[Symbol.asyncDispose]();
  sim = undefined;
  redis = undefined;
  dir = undefined;
});

describe('volley --cluster', () => {
  it('two `volley run --cluster` share one RPM limit; `volley cluster status` lists them', async () => {
    redis = await startOwnRedis();
    sim = await createSimulator({ limits: { rpm: 1_200 }, logBodies: false });
    dir = await tempDir();
    const runs = ['a', 'b'].map(async (name) => {
      const input = join(dir?.path ?? '', `${name}.jsonl`);
      await writeBatch(input, 150);
      return startCli(
        [
          'run',
          input,
          '-o',
          join(dir?.path ?? '', `${name}.out.jsonl`),
          '--rpm',
          '1200',
          '--progress',
          'none',
        ],
        // The URL from the environment, as a deployment would set it.
        { env: { OPENAI_BASE_URL: sim?.url ?? '', VOLLEY_CLUSTER_URL: redis?.url ?? '' } },
      );
    });
    const children = await Promise.all(runs);
    // While they run: both are members of one shared bucket.
    let status: {
      members: unknown[];
      buckets: Array<{ label: string; rpm: number; members: number }>;
    } = {
      members: [],
      buckets: [],
    };
    // A member's heartbeat is written as it connects, the bucket's state with its first lease:
    // on a loaded machine a look can fall in between.
    for (let i = 0; i < 40 && (status.members.length < 2 || status.buckets.length < 1); i++) {
      await sleep(200);
      const result = await runCli(['cluster', 'status', '--cluster', redis.url, '--json']);
      expect(result.code, result.stderr).toBe(0);
      status = JSON.parse(result.stdout) as typeof status;
    }
    expect(status.members).toHaveLength(2);
    expect(status.buckets).toHaveLength(1);
    expect(status.buckets[0]).toMatchObject({ label: `${new URL(sim.url).origin} *`, rpm: 1_200 });
    const table = await runCli(['cluster', 'status', '--cluster', redis.url]);
    expect(table.stdout).toMatch(/members: 2/);
    expect(table.stdout).toMatch(/shared buckets: 1/);
    const results = await Promise.all(children.map((child) => child.exited));
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    // 300 lines at 1,200 RPM shared: about 14 s; each alone at the full limit would take 7.
    const { rateLimited } = sim.stats();
    expect(rateLimited).toBeLessThanOrEqual(1);
    const accepted = sim.requests.filter((entry) => entry.status === 200).map((e) => e.receivedAt);
    const spanMs = Math.max(...accepted) - Math.min(...accepted);
    expect(spanMs).toBeGreaterThan(((300 - 25) * 60_000) / 1_200 / 1.03);
  }, 90_000);

  it('`volley cluster status` names an unreachable Redis without its password', async () => {
    const result = await runCli([
      'cluster',
      'status',
      '--cluster',
      'redis://:pw-never-shown-123@127.0.0.1:1',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('redis://127.0.0.1:1');
    expect(result.stderr).not.toContain('pw-never-shown-123');
  });
});
