/**
 * The Volley contenders differ only in `mode`, so they share this body: one runtime pointed at the
 * simulator with `concurrency` = C, and C lanes each awaiting `volley.embed` on one request-sized
 * batch (`batchSize` = inputs per request, so one call is exactly one HTTP request). Volley asks
 * for base64 and decodes each response to a Float32Array in the worker (on a worker thread in
 * `threads` mode, on the main loop in `async` mode).
 *
 * Float scenarios: Volley has no option to ask for float JSON (it asks for base64, and for floats
 * only once a server answered base64 with floats or with zero vectors). The runner points it at a
 * simulator that ignores `encoding_format` and answers float arrays (sim-server.mjs), the way some
 * real servers do; Volley's worker then decodes the float JSON. That is the same bytes on
 * the wire, and the same client work, as asking for floats. `serverSentFloats` is checked on every
 * response, so a float cell can never quietly measure base64.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Volley, VolleyMode } from 'volley';
import { createVolley, defaultThreads } from 'volley';
import { parseEmbedArgs, runEmbedContender } from './harness.js';
import { checkShape, inputsFor, MODEL } from './workload.js';

/**
 * Worker threads start in the background and take a few hundred ms of CPU each (loading modules,
 * here through tsx). A short warm-up can end before they are up, and then their start-up lands in
 * the measured window (in `auto` mode, whose base64 requests never reach a thread, it cost ~30% of
 * the window's CPU at 1536 × 64). A long-running process pays that once: wait for every thread
 * (the runtime's default count) to report before warming up.
 */
async function threadsStarted(volley: Volley, threads: number | undefined): Promise<void> {
  if (volley.mode === 'async') return;
  const expected = threads ?? defaultThreads();
  const deadline = performance.now() + 30_000;
  for (;;) {
    const threads = (await volley.workerStats()).filter((worker) => worker.threadId !== 0);
    if (threads.length >= expected) return;
    if (performance.now() > deadline)
      throw new Error(`${threads.length} of ${expected} worker threads started within 30 s`);
    await sleep(20);
  }
}

/** `threads` overrides the runtime's worker-thread count (threads mode). */
export async function runVolleyEmbedContender(
  name: string,
  mode: VolleyMode,
  options: { threads?: number } = {},
): Promise<void> {
  const args = parseEmbedArgs();
  const { dimensions, inputsPerRequest } = args;
  const volley = await createVolley({
    mode,
    endpoints: [{ baseUrl: args.url }],
    concurrency: args.concurrency,
    model: MODEL,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  });
  await threadsStarted(volley, options.threads);
  const embedOptions = { model: MODEL, dimensions, batchSize: inputsPerRequest };
  // One request before the warm-up, so that a server ignoring `encoding_format` is known before
  // it, as it is to any process that has run for a while: otherwise `auto` sends the whole first
  // wave of the warm-up to the loop and its threads reach the window cold (up to 18% slower than
  // `threads` in the float cells).
  await volley.embed(inputsFor(0, inputsPerRequest), embedOptions);
  const expectFloats = args.encoding === 'float';
  let serverSentFloats: boolean | undefined;
  await runEmbedContender(
    name,
    args,
    async (inputs) => {
      const result = await volley.embed(inputs, embedOptions);
      const failed = result.errors[0];
      if (failed !== undefined) throw failed.error;
      if (result.requests !== 1)
        throw new Error(`embed sent ${result.requests} requests, expected 1`);
      const { matrix } = result;
      if (matrix.count !== inputsPerRequest || matrix.dimensions !== dimensions)
        throw new Error(
          `matrix is ${matrix.count}×${matrix.dimensions}, expected ${inputsPerRequest}×${dimensions}`,
        );
      if (matrix.data.length !== inputsPerRequest * dimensions)
        throw new Error(`matrix holds ${matrix.data.length} floats`);
      checkShape(result.vectors, inputsPerRequest, dimensions);
      serverSentFloats = matrix.serverSentFloats;
      if (serverSentFloats !== expectFloats)
        throw new Error(
          `response was ${serverSentFloats ? 'float JSON' : 'base64'}, expected ${args.encoding}`,
        );
      return {
        inputs,
        first: result.vectors[0] as Float32Array,
        last: result.vectors[inputsPerRequest - 1] as Float32Array,
      };
    },
    {
      // Runtime counters show whether retries or queueing happened behind the numbers.
      extra: () => {
        const { submitted, succeeded, failed, retries, rateLimited, workerRestarts } =
          volley.stats();
        return {
          mode: volley.mode,
          serverSentFloats,
          submitted,
          succeeded,
          failed,
          retries,
          rateLimited,
          workerRestarts,
        };
      },
      close: () => volley.close(),
    },
  );
}
