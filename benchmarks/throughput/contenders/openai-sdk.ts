/**
 * openai-sdk: the official `openai` SDK with `p-limit(C)`, the way most Node pipelines fan out
 * today: every request queued up front through the limiter. Retries are off so a failure shows up
 * as an error instead of as hidden extra requests.
 */
import OpenAI from 'openai';
import pLimit from 'p-limit';
import type { Tally } from '../harness.js';
import { exitWhenFlushed, measure, parseContenderArgs, report, timed } from '../harness.js';
import {
  CHAT_MESSAGES,
  checkChatCompletion,
  checkStreamedText,
  MAX_TOKENS,
  MODEL,
  STREAM_CHUNKS,
} from '../workload.js';

const args = parseContenderArgs();
// The simulator takes no key, but the SDK refuses to start without one.
const client = new OpenAI({ baseURL: args.url, apiKey: 'sk-volley-bench', maxRetries: 0 });
const limit = pLimit(args.concurrency);

const once = async (): Promise<void> => {
  const completion = await client.chat.completions.create({
    model: MODEL,
    messages: CHAT_MESSAGES,
    max_tokens: MAX_TOKENS,
  });
  checkChatCompletion(completion);
};

const streamOnce = async (): Promise<void> => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: CHAT_MESSAGES,
    max_tokens: STREAM_CHUNKS,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  checkStreamedText(text);
};
const call = args.workload === 'long-stream' ? streamOnce : once;

async function run(count: number, latency?: Parameters<typeof timed>[2]): Promise<Tally> {
  const tally: Tally = { completed: 0, errors: 0 };
  await Promise.all(Array.from({ length: count }, () => limit(() => timed(call, tally, latency))));
  return tally;
}

await run(args.warmup);
report(await measure('openai-sdk', args, (latency) => run(args.count, latency)));
exitWhenFlushed();
