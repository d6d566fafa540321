/**
 * undici-raw: one undici `Pool` with C connections and C lanes on one event loop. This is what
 * Volley's `async` mode is built on, so it is the bar `async` must not fall behind.
 */
import { Pool } from 'undici';
import { exitWhenFlushed, measure, parseContenderArgs, report, runLanes } from '../harness.js';
import {
  CHAT_REQUEST,
  chatCompletionsUrl,
  checkChatCompletion,
  JSON_HEADERS,
} from '../workload.js';

const args = parseContenderArgs();
const target = chatCompletionsUrl(args.url);
const pool = new Pool(target.origin, { connections: args.concurrency });

const once = async (): Promise<void> => {
  const response = await pool.request({
    path: target.pathname,
    method: 'POST',
    headers: JSON_HEADERS,
    // Serialised per request, as every real client must: the body is part of the per-call cost.
    body: JSON.stringify(CHAT_REQUEST),
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`HTTP ${response.statusCode}`);
  }
  checkChatCompletion(await response.body.json());
};

await runLanes(args.concurrency, args.warmup, once);
report(
  await measure('undici-raw', args, (latency) =>
    runLanes(args.concurrency, args.count, once, latency),
  ),
);
await pool.close();
exitWhenFlushed();
