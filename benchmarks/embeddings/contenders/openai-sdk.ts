/**
 * openai-sdk: the official `openai` SDK's `embeddings.create` through `p-limit(C)`, every request
 * queued up front through the limiter, retries off.
 *
 * base64 cells: `encoding_format` is omitted, which is the SDK's default path: it asks the server
 * for base64 and converts every vector to a `number[]` (`Array.from(new Float32Array(...))`).
 * float cells: `encoding_format: 'float'`, returned as parsed (`number[]` from JSON).
 */
import OpenAI from 'openai';
import pLimit from 'p-limit';
import type { Tally } from '../../throughput/harness.js';
import { timed } from '../../throughput/harness.js';
import { parseEmbedArgs, runEmbedContender } from '../harness.js';
import { checkShape, MODEL } from '../workload.js';

const args = parseEmbedArgs();
const { dimensions, inputsPerRequest } = args;
// The simulator takes no key, but the SDK refuses to start without one.
const client = new OpenAI({ baseURL: args.url, apiKey: 'sk-volley-bench', maxRetries: 0 });
const limit = pLimit(args.concurrency);

await runEmbedContender(
  'openai-sdk',
  args,
  async (inputs) => {
    const response = await client.embeddings.create(
      args.encoding === 'float'
        ? { model: MODEL, input: inputs, dimensions, encoding_format: 'float' }
        : { model: MODEL, input: inputs, dimensions },
    );
    const vectors = response.data.map((item) => item.embedding);
    checkShape(vectors, inputsPerRequest, dimensions);
    return {
      inputs,
      first: vectors[0] as number[],
      last: vectors[inputsPerRequest - 1] as number[],
    };
  },
  {
    fanOut: async (count, call, latency) => {
      const tally: Tally = { completed: 0, errors: 0 };
      await Promise.all(
        Array.from({ length: count }, () => limit(() => timed(call, tally, latency))),
      );
      return tally;
    },
  },
);
