/**
 * Resilience end to end: faults the simulator injects, replicas that fail, servers that go away,
 * local servers that push back. Invariants checked against the simulator's own request log.
 */

import { readFile } from 'node:fs/promises';
import type { FaultKind, SimRequestLogEntry, Simulator } from '@volley/sim';
import { createSimulator, simulatedChatContent } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { createVolley, ErrorCode } from 'volley';
import { chatBody, freePort, parseJsonl, runCli, tempDir, writeBatch } from './helpers.js';

const MODEL = 'volley-sim-1';

interface Summary {
  succeeded: number;
  failed: number;
  retries: number;
  extraBilledCalls: number;
  byEndpoint: Record<string, { succeeded: number; failed: number }>;
}

interface OutputLine {
  custom_id: string;
  response: { body: { choices: Array<{ message: { content: string } }> } };
  error: unknown;
}

/** Every line once, each with exactly the content the server generates for it. */
async function expectEveryLineOnce(path: string, count: number): Promise<void> {
  const lines = parseJsonl(await readFile(path, 'utf8')) as unknown as OutputLine[];
  expect(lines).toHaveLength(count);
  expect(new Set(lines.map((line) => line.custom_id)).size).toBe(count);
  for (const line of lines) {
    expect(line.error).toBeNull();
    const index = Number(line.custom_id.slice('req-'.length));
    expect(line.response.body.choices[0]?.message.content).toBe(
      simulatedChatContent(chatBody(index)).content,
    );
  }
}

/** The most requests the server was handling at any one moment, from its log. */
function mostAtOnce(log: readonly SimRequestLogEntry[]): number {
  let most = 0;
  for (const entry of log) {
    const open = log.filter(
      (other) =>
        other.receivedAt <= entry.receivedAt && (other.finishedAt ?? Infinity) > entry.receivedAt,
    );
    most = Math.max(most, open.length);
  }
  return most;
}

describe('resilience', () => {
  it('finishes a 5,000-line batch through 5% transient faults: every line once, extra billing reported', async () => {
    const kinds: Partial<Record<FaultKind, number>> = {
      'status-429': 1,
      'status-503': 1,
      'status-500': 1,
      'reset-before-headers': 1,
      'reset-mid-body': 1,
      'truncate-stream': 1,
    };
    const sim = await createSimulator({
      seed: 7,
      faults: { rate: 0.05, kinds, retryAfterMs: 200 },
      logBodies: false,
    });
    try {
      await using dir = await tempDir();
      const count = 5_000;
      await writeBatch(dir.file('in.jsonl'), count);
      const result = await runCli([
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        '--base-url',
        sim.url,
        '--concurrency',
        '64',
        '--progress',
        'none',
        '--json',
      ]);
      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout) as Summary;
      expect(summary).toMatchObject({ succeeded: count, failed: 0 });
      await expectEveryLineOnce(dir.file('out.jsonl'), count);
      const faults = Object.values(sim.stats().byFault).reduce((sum, n) => sum + (n ?? 0), 0);
      expect(faults).toBeGreaterThan(count * 0.03);
      expect(summary.retries).toBeGreaterThanOrEqual(faults);
      // Resets after the request was sent and truncated bodies may have been billed: counted, and few.
      expect(summary.extraBilledCalls).toBeGreaterThan(0);
      expect(summary.extraBilledCalls).toBeLessThanOrEqual(count * 0.03);
    } finally {
      await sim.close();
    }
  }, 120_000);

  it('moves work off a replica that starts failing mid-run; the summary shows the split', async () => {
    const replicas = await Promise.all(
      [0, 1, 2].map(() => createSimulator({ latency: { headersMs: 2 }, logBodies: false })),
    );
    const failing = replicas[2] as Simulator;
    try {
      await using dir = await tempDir();
      const count = 3_000;
      await writeBatch(dir.file('in.jsonl'), count);
      const watcher = setInterval(() => {
        if (failing.stats().requests >= 200)
          failing.setOptions({ faults: { rate: 1, kinds: { 'status-500': 1 } } });
      }, 10);
      const result = await runCli([
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        ...replicas.flatMap((sim) => ['--base-url', sim.url]),
        '--concurrency',
        '48',
        '--progress',
        'none',
        '--json',
      ]);
      clearInterval(watcher);
      expect(result.code).toBe(0);
      await expectEveryLineOnce(dir.file('out.jsonl'), count);
      const summary = JSON.parse(result.stdout) as Summary;
      const split = replicas.map((sim) => summary.byEndpoint[sim.url]?.succeeded ?? 0);
      expect(split.reduce((a, b) => a + b, 0)).toBe(count);
      // The healthy replicas took the bulk; the failing one stopped getting work (circuit open).
      expect(split[2]).toBeLessThan(300);
      expect(split[0]).toBeGreaterThan(count / 3);
      expect(split[1]).toBeGreaterThan(count / 3);
      expect(failing.stats().byStatus[500] ?? 0).toBeLessThan(100);
    } finally {
      await Promise.all(replicas.map((sim) => sim.close()));
    }
  }, 120_000);

  it('rides out a server that refuses connections, then comes back on the same port', async () => {
    const port = await freePort();
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 300);
    const run = runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      `http://127.0.0.1:${port}/v1`,
      '--progress',
      'none',
      '--json',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const sim = await createSimulator({ port });
    try {
      const result = await run;
      expect(result.code).toBe(0);
      await expectEveryLineOnce(dir.file('out.jsonl'), 300);
      expect((JSON.parse(result.stdout) as Summary).extraBilledCalls).toBe(0);
    } finally {
      await sim.close();
    }
  }, 60_000);

  it.each(['status-400-context-length', 'status-404', 'status-422', 'should-not-retry'] as const)(
    'never retries a %s (one request in the server log)',
    async (kind) => {
      const sim = await createSimulator({ faultFor: () => kind });
      const volley = await createVolley({
        endpoints: [{ baseUrl: sim.url }],
        model: MODEL,
        logger: false,
      });
      try {
        await expect(
          volley.chat({ messages: [{ role: 'user', content: kind }] }),
        ).rejects.toMatchObject({
          code: ErrorCode.HTTP,
        });
        expect(sim.requests).toHaveLength(1);
      } finally {
        await volley.close();
        await sim.close();
      }
    },
  );

  it('a redirect is not followed (credentials never travel to another location)', async () => {
    const sim = await createSimulator({ faultFor: () => 'redirect' });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url, apiKey: 'sk-test-redirect-key' }],
      model: MODEL,
      logger: false,
    });
    try {
      await expect(
        volley.chat({ messages: [{ role: 'user', content: 'go elsewhere' }] }),
      ).rejects.toMatchObject({
        code: ErrorCode.HTTP,
        status: 307,
      });
      expect(sim.requests.map((entry) => entry.path)).toEqual(['/v1/chat/completions']);
    } finally {
      await volley.close();
      await sim.close();
    }
  });

  it('treats 503s from a slot-limited local server as backpressure, not failures', async () => {
    let refused = 0;
    const sim = await createSimulator({
      faultFor: () => (refused++ < 30 ? 'status-503' : undefined),
    });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url, maxInFlight: 4 }],
      model: MODEL,
      maxRetries: 0,
      backoff: { baseDelayMs: 5 },
      logger: false,
    });
    try {
      const results = await volley.map(
        Array.from({ length: 40 }, (_, i) => i),
        (i) => volley.chat({ messages: [{ role: 'user', content: `slot ${i}` }] }),
      );
      expect(results.every((result) => result.ok)).toBe(true);
      expect(volley.stats()).toMatchObject({ backpressure: 30, retries: 0, failed: 0 });
      // Never more than the declared slots on the wire at once.
      expect(mostAtOnce(sim.requests)).toBeLessThanOrEqual(4);
    } finally {
      await volley.close();
      await sim.close();
    }
  });

  it('volley run --max-in-flight keeps a local server within its slots and waits out its 503s', async () => {
    let refused = 0;
    const sim = await createSimulator({
      latency: { headersMs: 5 },
      faultFor: () => (refused++ < 20 ? 'status-503' : undefined),
    });
    try {
      await using dir = await tempDir();
      await writeBatch(dir.file('in.jsonl'), 200);
      const result = await runCli([
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        '--base-url',
        sim.url,
        '--max-in-flight',
        '3',
        '--max-retries',
        '0',
        '--progress',
        'none',
        '--json',
      ]);
      expect(result.code).toBe(0);
      await expectEveryLineOnce(dir.file('out.jsonl'), 200);
      expect(mostAtOnce(sim.requests)).toBeLessThanOrEqual(3);
    } finally {
      await sim.close();
    }
  }, 60_000);

  it('applies the configured headers timeout, not a client default', async () => {
    const sim = await createSimulator({ latency: { headersMs: 1_500 } });
    try {
      for (const [headersTimeoutMs, expected] of [
        [3_000, 'ok'],
        [500, ErrorCode.TIMEOUT],
      ] as const) {
        const volley = await createVolley({
          endpoints: [{ baseUrl: sim.url }],
          model: MODEL,
          headersTimeoutMs,
          maxRetries: 0,
          maxAmbiguousRetries: 0,
          logger: false,
        });
        const outcome = await volley.chat({ messages: [{ role: 'user', content: 'slow' }] }).then(
          () => 'ok',
          (error: { cause?: { code?: string } }) => error.cause?.code,
        );
        expect(outcome).toBe(expected);
        await volley.close();
      }
    } finally {
      await sim.close();
    }
  }, 30_000);
});
