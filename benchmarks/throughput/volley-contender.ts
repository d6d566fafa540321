/**
 * The two Volley contenders differ only in `mode`, so they share this body: one runtime pointed at
 * the simulator, C lanes each awaiting `volley.chat` in a loop. Latency is wall time per chat call,
 * so it includes Volley's queueing and scheduling, not just the HTTP exchange.
 */
import type { VolleyMode } from 'volley';
import { createVolley } from 'volley';
import { exitWhenFlushed, measure, parseContenderArgs, report, runLanes } from './harness.js';
import {
  CHAT_MESSAGES,
  checkChatCompletion,
  checkStreamedText,
  MAX_TOKENS,
  MODEL,
  STREAM_CHUNKS,
} from './workload.js';

/** How often the `-metrics` contenders scrape their registry: far more often than Prometheus does. */
const SCRAPE_INTERVAL_MS = 1_000;

/**
 * With `metrics`, the runtime keeps its Prometheus metrics and a timer scrapes them every second,
 * so the cost of counting and of rendering is both in the measured window.
 * `threads` overrides the runtime's worker-thread count (threads mode).
 */
export async function runVolleyContender(
  name: string,
  mode: VolleyMode,
  options: { metrics?: boolean; threads?: number } = {},
): Promise<void> {
  const args = parseContenderArgs();
  const volley = await createVolley({
    mode,
    endpoints: [{ baseUrl: args.url }],
    concurrency: args.concurrency,
    model: MODEL,
    ...(options.metrics === true ? { metrics: true } : {}),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  });
  const registry = volley.metrics;
  const scraper =
    registry === undefined
      ? undefined
      : setInterval(() => void registry.metrics(), SCRAPE_INTERVAL_MS).unref();
  const once =
    args.workload === 'long-stream'
      ? async (): Promise<void> => {
          // Volley assembles the stream into the completion a non-streaming call returns.
          const completion = await volley.chat(
            { messages: CHAT_MESSAGES, max_tokens: STREAM_CHUNKS },
            { stream: true },
          );
          checkStreamedText(completion.choices[0]?.message.content);
        }
      : async (): Promise<void> => {
          checkChatCompletion(
            await volley.chat({ messages: CHAT_MESSAGES, max_tokens: MAX_TOKENS }),
          );
        };
  await runLanes(args.concurrency, args.warmup, once);
  const result = await measure(
    name,
    args,
    (latency) => runLanes(args.concurrency, args.count, once, latency),
    // Runtime counters show whether retries or queueing happened behind the numbers.
    () => {
      const { submitted, succeeded, failed, retries, rateLimited, workerRestarts } = volley.stats();
      return {
        mode: volley.mode,
        submitted,
        succeeded,
        failed,
        retries,
        rateLimited,
        workerRestarts,
      };
    },
  );
  clearInterval(scraper);
  report(result);
  await volley.close();
  exitWhenFlushed();
}
