/**
 * undici-raw: one undici `Pool` with C connections and C lanes on one event loop. This is what
 * Volley's `async` mode is built on, so it is the bar `async` must not fall behind.
 */
import type { Dispatcher } from 'undici';
import { Pool } from 'undici';
import { exitWhenFlushed, measure, parseContenderArgs, report, runLanes } from '../harness.js';
import {
  CHAT_REQUEST,
  chatCompletionsUrl,
  checkChatCompletion,
  checkStreamedText,
  JSON_HEADERS,
  STREAM_REQUEST,
} from '../workload.js';

const args = parseContenderArgs();
const target = chatCompletionsUrl(args.url);
const pool = new Pool(target.origin, { connections: args.concurrency });

/** POSTs `body` and returns the 200 answer's body stream; any other status is an error. */
async function post(body: object): Promise<Dispatcher.ResponseData['body']> {
  const response = await pool.request({
    path: target.pathname,
    method: 'POST',
    headers: JSON_HEADERS,
    // Serialised per request, as every real client must: the body is part of the per-call cost.
    body: JSON.stringify(body),
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`HTTP ${response.statusCode}`);
  }
  return response.body;
}

const once = async (): Promise<void> => {
  checkChatCompletion(await (await post(CHAT_REQUEST)).json());
};

/** A lean SSE client: split the events, parse each chunk, join the deltas. */
const streamOnce = async (): Promise<void> => {
  const body = await post(STREAM_REQUEST);
  let text = '';
  let pending = '';
  for await (const chunk of body.setEncoding('utf8')) {
    const data = pending + (chunk as string);
    let start = 0;
    for (let end = data.indexOf('\n\n'); end !== -1; end = data.indexOf('\n\n', start)) {
      const event = data.slice(start, end);
      start = end + 2;
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const content = (
        JSON.parse(event.slice(6)) as { choices: Array<{ delta?: { content?: string } }> }
      ).choices[0]?.delta?.content;
      if (content !== undefined) text += content;
    }
    pending = data.slice(start);
  }
  checkStreamedText(text);
};
const run = args.workload === 'long-stream' ? streamOnce : once;

await runLanes(args.concurrency, args.warmup, run);
report(
  await measure('undici-raw', args, (latency) =>
    runLanes(args.concurrency, args.count, run, latency),
  ),
);
await pool.close();
exitWhenFlushed();
