/**
 * The batch client most Node pipelines would write today: the official `openai` SDK (default
 * options) behind `p-limit(C)`, the input streamed with readline and fed to the limiter no faster
 * than it drains (at most 2·C lines read ahead), one Batch output record per line. The same shape
 * as lean-undici.ts; compiled to plain JS by the runner like it.
 *
 *   node openai-sdk.mjs <input.jsonl> <output.jsonl> <baseUrl> <concurrency>
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import pLimit from 'p-limit';

const [input, output, baseUrl, concurrencyArg = '64'] = process.argv.slice(2);
if (input === undefined || output === undefined || baseUrl === undefined) {
  process.stderr.write('usage: openai-sdk <input.jsonl> <output.jsonl> <baseUrl> <concurrency>\n');
  process.exit(2);
}
const concurrency = Number(concurrencyArg);
// The local servers take no key, but the SDK refuses to start without one.
const client = new OpenAI({ baseURL: baseUrl, apiKey: 'sk-volley-bench' });
const limit = pLimit(concurrency);
const out = createWriteStream(output);

interface BatchLine {
  custom_id: string;
  body: ChatCompletionCreateParamsNonStreaming;
}

async function send(line: BatchLine): Promise<void> {
  const record = {
    id: `batch_req_${randomUUID().replaceAll('-', '')}`,
    custom_id: line.custom_id,
    response: null as unknown,
    error: null as unknown,
  };
  try {
    const completion = await client.chat.completions.create(line.body);
    record.response = {
      status_code: 200,
      request_id: completion._request_id ?? '',
      body: completion,
    };
  } catch (error) {
    const status = error instanceof OpenAI.APIError ? error.status : undefined;
    record.error = {
      code: status === undefined ? 'request_failed' : String(status),
      message: String(error),
    };
  }
  out.write(`${JSON.stringify(record)}\n`);
}

let inFlight = 0;
let wake: (() => void) | undefined;
const settled = (): void => {
  inFlight--;
  const resume = wake;
  wake = undefined;
  resume?.();
};
const slotFreed = (): Promise<void> =>
  new Promise((resolve) => {
    wake = resolve;
  });

for await (const text of createInterface({ input: createReadStream(input), crlfDelay: Infinity })) {
  if (text.trim() === '') continue;
  inFlight++;
  void limit(() => send(JSON.parse(text) as BatchLine)).then(settled);
  if (inFlight >= 2 * concurrency) await slotFreed();
}
while (inFlight > 0) await slotFreed();
out.end();
await once(out, 'finish');
