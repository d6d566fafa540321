/**
 * The lean batch client: what a competent engineer writes in an afternoon to push an OpenAI Batch
 * file through an OpenAI-compatible server, and the floor `volley run` is measured against. Reads
 * the JSONL input with readline, keeps C requests in flight on one undici Pool (C lanes pulling
 * lines from one iterator), parses each response, writes one Batch output record per line. No
 * retries, no resume, no rate limits. Self-contained: the runner compiles it to plain JS, so it
 * starts like `volley run` does, without a TypeScript loader.
 *
 *   node lean-undici.mjs <input.jsonl> <output.jsonl> <baseUrl> <concurrency>
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';

const [input, output, baseUrl, concurrencyArg = '64'] = process.argv.slice(2);
if (input === undefined || output === undefined || baseUrl === undefined) {
  process.stderr.write('usage: lean-undici <input.jsonl> <output.jsonl> <baseUrl> <concurrency>\n');
  process.exit(2);
}
const concurrency = Number(concurrencyArg);
const base = new URL(baseUrl);
// Batch lines name the path with its /v1 (`/v1/chat/completions`); the base URL ends in /v1 too.
const prefix = base.pathname.replace(/\/v1\/?$/, '');
const pool = new Pool(base.origin, { connections: concurrency });
const out = createWriteStream(output);
const lines = createInterface({ input: createReadStream(input), crlfDelay: Infinity })[
  Symbol.asyncIterator
]();

interface BatchLine {
  custom_id: string;
  url: string;
  body: unknown;
}

async function send(line: BatchLine): Promise<string> {
  const record = {
    id: `batch_req_${randomUUID().replaceAll('-', '')}`,
    custom_id: line.custom_id,
    response: null as unknown,
    error: null as unknown,
  };
  try {
    const response = await pool.request({
      path: prefix + line.url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(line.body),
    });
    record.response = {
      status_code: response.statusCode,
      request_id: response.headers['x-request-id'] ?? '',
      body: await response.body.json(),
    };
  } catch (error) {
    record.error = { code: 'request_failed', message: String(error) };
  }
  return JSON.stringify(record);
}

// One wait for 'drain' shared by every lane that finds the file's buffer full.
let drained: Promise<void> | undefined;

async function lane(): Promise<void> {
  for (;;) {
    const next = await lines.next();
    if (next.done === true) return;
    if (next.value.trim() === '') continue;
    const record = await send(JSON.parse(next.value) as BatchLine);
    if (!out.write(`${record}\n`)) {
      drained ??= once(out, 'drain').then(() => {
        drained = undefined;
      });
    }
    if (drained !== undefined) await drained;
  }
}

await Promise.all(Array.from({ length: concurrency }, lane));
out.end();
await once(out, 'finish');
await pool.close();
