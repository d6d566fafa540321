/**
 * The engine model's knee, measured: closed-loop streaming load at rising concurrency against a
 * simulator with 48 slots (engine defaults otherwise), throughput and median TTFT per point, next
 * to the engine's own truth and the model's analytic figures. The simulator runs in a child
 * process so client and server do not share an event loop.
 *
 *   node --import tsx packages/sim/test/scripts/engine-knee.ts [slots=48] [concurrencies=8,16,24,32,48,64,96,128] [seconds=6]
 *
 * A measurement to run by hand (absolute times depend on the machine), not a test.
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createSimulator, type SimEngineTiming } from '../../src/index.js';

const OUTPUT_TOKENS = 64;
const WARMUP_MS = 1000;
// Engine defaults (options.ts), for the analytic columns.
const DECODE_STEP_MS = 10;
const PER_SEQUENCE_MS = 0.1;
const PREFILL_MS_PER_TOKEN = 0.05;

if (process.argv[2] === 'serve') {
  const sim = await createSimulator({
    engine: { slots: Number(process.argv[3]) },
    logBodies: false,
  });
  process.send?.(sim.url);
  process.once('disconnect', () => void sim.close());
} else {
  await main();
}

interface Sample {
  startedAt: number;
  endedAt: number;
  ttftMs: number;
  tokens: number;
  truth: SimEngineTiming;
}

async function main(): Promise<void> {
  const slots = Number(process.argv[2] ?? 48);
  const concurrencies = (process.argv[3] ?? '8,16,24,32,48,64,96,128').split(',').map(Number);
  const seconds = Number(process.argv[4] ?? 6);
  const child = fork(fileURLToPath(import.meta.url), ['serve', String(slots)], {
    execArgv: ['--import', 'tsx'],
  });
  const url = await new Promise<string>((resolve) =>
    child.once('message', (m) => resolve(String(m))),
  );
  const content = 'a prompt of about forty tokens '.repeat(5);
  const promptTokens = 3 + 4 + Math.ceil(content.length / 4);
  // Answer lengths spread evenly over L/2..3L/2 (mean L): equal lengths would make the batch
  // start and finish in lockstep waves, which no real workload does.
  const bodies = Array.from({ length: OUTPUT_TOKENS + 1 }, (_, i) =>
    JSON.stringify({
      model: 'volley-sim-1',
      messages: [{ role: 'user', content }],
      max_tokens: OUTPUT_TOKENS / 2 + i,
      stream: true,
    }),
  );

  console.log(
    `engine: ${slots} slots, decode step ${DECODE_STEP_MS} ms + ${PER_SEQUENCE_MS} ms per extra sequence, ` +
      `prefill ${PREFILL_MS_PER_TOKEN} ms/token; prompts of ${promptTokens} tokens, answers of ` +
      `${OUTPUT_TOKENS / 2}..${(OUTPUT_TOKENS * 3) / 2} tokens, ` +
      `${seconds} s per point after ${WARMUP_MS} ms warm-up\n`,
  );
  console.log(
    '| concurrency | req/s | output tok/s | model tok/s | median TTFT (client) | median TTFT (truth) | mean TTFT (truth) | model TTFT (mean) | median TPOT (truth) | model TPOT |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const durationMs = seconds * 1000;
  for (const concurrency of concurrencies) {
    const { samples, startedAt } = await closedLoop(url, bodies, concurrency, durationMs);
    // Answers that ended inside the window after the warm-up: throughput over a fixed span.
    const from = startedAt + WARMUP_MS;
    const measured = samples.filter((s) => s.endedAt >= from && s.endedAt < from + durationMs);
    const tokens = measured.reduce((sum, s) => sum + s.tokens, 0);
    const model = analytic(concurrency, slots, promptTokens);
    const truthTtft = measured.map((s) => s.truth.ttftMs);
    console.log(
      `| ${concurrency} | ${((measured.length * 1000) / durationMs).toFixed(1)} | ${((tokens * 1000) / durationMs).toFixed(0)} | ` +
        `${model.tokensPerSecond.toFixed(0)} | ${median(measured.map((s) => s.ttftMs)).toFixed(1)} ms | ` +
        `${median(truthTtft).toFixed(1)} ms | ${mean(truthTtft).toFixed(1)} ms | ${model.ttftMs.toFixed(1)} ms | ` +
        `${median(measured.map((s) => s.truth.tpotMs)).toFixed(2)} ms | ${model.stepMs.toFixed(2)} ms |`,
    );
  }
  child.disconnect();
}

/**
 * The model's steady state for a closed loop: n = min(C, slots) sequences decode together; each
 * step also carries the prefill of the n / L sequences that start per step on average.
 * - Below the knee a new request follows an answer that ended with a step, so it arrives just
 *   after the next step began: it waits that step, then its own (prefill + sample): 2 steps.
 * - Beyond it each request spends C / slots answer lifetimes in the system (Little's law), all
 *   but one in the queue, and is admitted at a step's end into the next step: queue + 1 step.
 */
function analytic(concurrency: number, slots: number, promptTokens: number) {
  const running = Math.min(concurrency, slots);
  const prefillMs = promptTokens * PREFILL_MS_PER_TOKEN;
  const stepMs =
    DECODE_STEP_MS + PER_SEQUENCE_MS * (running - 1) + (running / OUTPUT_TOKENS) * prefillMs;
  const answerMs = OUTPUT_TOKENS * stepMs;
  const ttftMs =
    concurrency > slots
      ? (concurrency / slots - 1) * answerMs + stepMs + prefillMs
      : 2 * stepMs + prefillMs;
  return { stepMs, tokensPerSecond: (running * 1000) / stepMs, ttftMs };
}

/** `concurrency` workers, each sending streaming requests back to back until `durationMs`. */
async function closedLoop(
  url: string,
  bodies: readonly string[],
  concurrency: number,
  durationMs: number,
): Promise<{ samples: Sample[]; startedAt: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const samples: Sample[] = [];
  const startedAt = performance.now();
  const deadline = startedAt + WARMUP_MS + durationMs;
  let sent = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        // A fixed stride through the lengths: spread, and the same sequence on every run.
        const body = bodies[(sent++ * 37) % bodies.length]!;
        samples.push(await stream(url, body, agent));
      }
    }),
  );
  agent.destroy();
  return { samples, startedAt };
}

function stream(url: string, body: string, agent: Agent): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    let ttftMs = -1;
    let text = '';
    const req = request(`${url}/chat/completions`, { method: 'POST', agent }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        // The first event with content (the role-only event does not count).
        if (ttftMs < 0 && /"content":"[^"]/.test(chunk)) ttftMs = performance.now() - startedAt;
      });
      res.on('end', () => {
        const timing = /^: x-volley-sim-timing (.*)$/m.exec(text);
        if (timing === null) {
          reject(new Error(`no timing comment (status ${res.statusCode})`));
          return;
        }
        const truth = JSON.parse(timing[1]!) as SimEngineTiming;
        resolve({
          startedAt,
          endedAt: performance.now(),
          ttftMs,
          tokens: truth.outputTokens,
          truth,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? Number.NaN;
}
