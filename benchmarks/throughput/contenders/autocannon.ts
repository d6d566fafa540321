/**
 * autocannon: the raw HTTP ceiling. It replays fixed request bytes and never parses a response,
 * so it bounds what any Node client can reach against this server on this box.
 */

import type { AutocannonOptions } from 'autocannon';
import autocannon from 'autocannon';
import { exitWhenFlushed, measure, parseContenderArgs, report, round } from '../harness.js';
import {
  CHAT_REQUEST_JSON,
  chatCompletionsUrl,
  JSON_HEADERS,
  STREAM_REQUEST,
} from '../workload.js';

const args = parseContenderArgs();
/**
 * `AUTOCANNON_WORKERS=N`: autocannon's own worker-thread mode (connections and amount divided
 * among N workers), for comparisons with a multi-threaded client. Unset: one thread, its default.
 */
const workers = Number(process.env.AUTOCANNON_WORKERS ?? 0);

function options(amount: number): AutocannonOptions {
  return {
    url: chatCompletionsUrl(args.url).href,
    method: 'POST',
    headers: JSON_HEADERS,
    body: args.workload === 'long-stream' ? JSON.stringify(STREAM_REQUEST) : CHAT_REQUEST_JSON,
    // autocannon refuses more connections than requests (it splits `amount` across connections).
    connections: Math.min(args.concurrency, amount),
    amount,
    // With `amount`, autocannon only notices it is done on a sample tick; the default 1 s tick
    // quantises wall time to whole seconds (research/perf-lab.md §1).
    sampleInt: 5,
    ...(workers > 1 ? { workers } : {}),
  };
}

if (args.warmup > 0) await autocannon(options(args.warmup));
let latency = { p50: 0, p99: 0, max: 0 };
const result = await measure('autocannon', args, async () => {
  const run = await autocannon(options(args.count));
  latency = { p50: run.latency.p50, p99: run.latency.p99, max: run.latency.max };
  const failed = run.errors + run.timeouts + run.non2xx;
  const tally = { completed: run['2xx'], errors: failed };
  return failed > 0
    ? { ...tally, firstError: `errors=${run.errors} timeouts=${run.timeouts} non2xx=${run.non2xx}` }
    : tally;
});
// autocannon keeps its own latency histogram (whole milliseconds); ours saw no individual requests.
result.latencyP50Ms = round(latency.p50, 3);
result.latencyP99Ms = round(latency.p99, 3);
result.latencyMaxMs = round(latency.max, 3);
report(result);
exitWhenFlushed();
