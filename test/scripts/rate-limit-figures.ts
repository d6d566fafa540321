/**
 * The rate-limit figures, measured against the simulator enforcing the limits (the same
 * scenarios test/rate-limits.test.ts asserts on), printed as JSON:
 *
 *   node --import tsx test/scripts/rate-limit-figures.ts
 *
 * - rpm: 6,000 RPM enforced, Volley told --rpm 6000: achieved rate over the run, 429 share.
 * - rpmUnknown: 1,200 RPM enforced, Volley told nothing: achieved rate, 429s, retry-after jumps.
 * - tpm: 60,000 TPM enforced (settled against usage), varying answer lengths: achieved TPM.
 */
import type { SimRequestLogEntry } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { createVolley } from 'volley';

const MODEL = 'volley-sim-1';

function prompt(i: number, extra: Record<string, unknown> = {}) {
  return { messages: [{ role: 'user' as const, content: `rate test ${i}` }], ...extra };
}

async function scenario(
  limits: { rpm?: number; tpm?: number },
  told: { rpm?: number; tpm?: number },
  calls: number,
  request: (i: number) => ReturnType<typeof prompt>,
) {
  const sim = await createSimulator({ limits: { ...limits, tokenAccounting: 'usage' } });
  const volley = await createVolley({
    endpoints: [{ baseUrl: sim.url, ...told }],
    model: MODEL,
    concurrency: 64,
    logger: false,
  });
  const started = performance.now();
  const results = await volley.map(
    Array.from({ length: calls }, (_, i) => i),
    (i) => volley.chat(request(i)),
  );
  const wallMs = performance.now() - started;
  const log = sim.requests;
  const accepted = log
    .filter((entry) => entry.status === 200)
    .map((entry) => entry.receivedAt)
    .sort((a, b) => a - b);
  const spanMs = (accepted.at(-1) ?? 0) - (accepted[0] ?? 0);
  const stats = sim.stats();
  const [lane] = await volley.limiterStats();
  await volley.close();
  await sim.close();
  return {
    calls,
    succeeded: results.filter((result) => result.ok).length,
    wallSeconds: +(wallMs / 1000).toFixed(2),
    achievedRpm: Math.round(((accepted.length - 1) * 60_000) / spanMs),
    achievedTpm: Math.round(((stats.promptTokens + stats.completionTokens) * 60_000) / wallMs),
    rateLimited: stats.rateLimited,
    rateLimitedShare: +(stats.rateLimited / stats.requests).toFixed(4),
    retryAfterJumps: retryAfterJumps(log),
    bucketWaitSeconds: +((lane?.totalWaitMs ?? 0) / 1000).toFixed(1),
  };
}

/** Retries that reached the server before the wait their 429 asked for had passed. */
function retryAfterJumps(log: readonly SimRequestLogEntry[]): number {
  const byBody = new Map<string, SimRequestLogEntry[]>();
  for (const entry of log)
    byBody.set(JSON.stringify(entry.body), [
      ...(byBody.get(JSON.stringify(entry.body)) ?? []),
      entry,
    ]);
  let jumps = 0;
  for (const attempts of byBody.values()) {
    for (let i = 1; i < attempts.length; i++) {
      const previous = attempts[i - 1] as SimRequestLogEntry;
      if (previous.status !== 429 || previous.retryAfterMs === undefined) continue;
      if (
        (attempts[i] as SimRequestLogEntry).receivedAt -
          (previous.headersSentAt ?? previous.receivedAt) <
        previous.retryAfterMs - 1
      )
        jumps++;
    }
  }
  return jumps;
}

const figures = {
  rpm: await scenario({ rpm: 6_000 }, { rpm: 6_000 }, 1_600, (i) => prompt(i)),
  rpmUnknown: await scenario({ rpm: 1_200 }, {}, 400, (i) => prompt(i)),
  tpm: await scenario({ tpm: 60_000 }, { tpm: 60_000 }, 300, (i) =>
    prompt(i, { max_tokens: 20 + ((i * 37) % 100) }),
  ),
};
process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
