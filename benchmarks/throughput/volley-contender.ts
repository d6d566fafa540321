/**
 * The two Volley contenders differ only in `mode`, so they share this body: one runtime pointed at
 * the simulator, C lanes each awaiting `volley.chat` in a loop. Latency is wall time per chat call,
 * so it includes Volley's queueing and scheduling, not just the HTTP exchange.
 */
import type { VolleyMode } from 'volley';
import { createVolley } from 'volley';
import { exitWhenFlushed, measure, parseContenderArgs, report, runLanes } from './harness.js';
import { CHAT_MESSAGES, checkChatCompletion, MAX_TOKENS, MODEL } from './workload.js';

export async function runVolleyContender(name: string, mode: VolleyMode): Promise<void> {
  const args = parseContenderArgs();
  const volley = await createVolley({
    mode,
    endpoints: [{ baseUrl: args.url }],
    concurrency: args.concurrency,
    model: MODEL,
  });
  const once = async (): Promise<void> => {
    checkChatCompletion(await volley.chat({ messages: CHAT_MESSAGES, max_tokens: MAX_TOKENS }));
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
  report(result);
  await volley.close();
  exitWhenFlushed();
}
