/**
 * fetch-limiter: Node's global `fetch` with C lanes, the "no dependencies" way to fan out.
 *
 * This file must not import the npm `undici` package (not even transitively): doing so installs
 * undici 7's Agent as the global dispatcher under Node 20's fetch and turns this into a different
 * client (research/perf-lab.md §2.1).
 */
import {
  exitWhenFlushed,
  measure,
  parseContenderArgs,
  report,
  runLanes,
  shortChatOnly,
} from '../harness.js';
import {
  CHAT_REQUEST,
  chatCompletionsUrl,
  checkChatCompletion,
  JSON_HEADERS,
} from '../workload.js';

const args = parseContenderArgs();
shortChatOnly('fetch-limiter', args);
const target = chatCompletionsUrl(args.url).href;

const once = async (): Promise<void> => {
  const response = await fetch(target, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify(CHAT_REQUEST),
  });
  if (response.status !== 200) {
    await response.arrayBuffer();
    throw new Error(`HTTP ${response.status}`);
  }
  checkChatCompletion(await response.json());
};

await runLanes(args.concurrency, args.warmup, once);
report(
  await measure('fetch-limiter', args, (latency) =>
    runLanes(args.concurrency, args.count, once, latency),
  ),
);
exitWhenFlushed();
