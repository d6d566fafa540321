/**
 * `volley sim`: the OpenAI-compatible simulator as a standalone server, for pointing other
 * clients (the OpenAI SDK, benchmarks, your own pipeline) at something that behaves like an LLM.
 */
import type { SimulatorOptions } from '@volley/sim';
import { createSimulator } from '@volley/sim';

export interface SimCommandOptions {
  port: number;
  host: string;
  rpm?: number;
  tpm?: number;
  latencyMs?: number;
  tokensPerSecond?: number;
  faultRate?: number;
  seed?: number;
  apiKeyEnv?: string;
}

export async function simCommand(options: SimCommandOptions): Promise<number> {
  const simOptions: SimulatorOptions = { port: options.port, host: options.host };
  if (options.seed !== undefined) simOptions.seed = options.seed;
  if (options.rpm !== undefined || options.tpm !== undefined) {
    simOptions.limits = {
      ...(options.rpm === undefined ? {} : { rpm: options.rpm }),
      ...(options.tpm === undefined ? {} : { tpm: options.tpm }),
    };
  }
  if (options.latencyMs !== undefined || options.tokensPerSecond !== undefined) {
    simOptions.latency = {
      ...(options.latencyMs === undefined ? {} : { headersMs: options.latencyMs }),
      ...(options.tokensPerSecond === undefined
        ? {}
        : { tokensPerSecond: options.tokensPerSecond }),
    };
  }
  if (options.faultRate !== undefined) simOptions.faults = { rate: options.faultRate };
  if (options.apiKeyEnv !== undefined) {
    const key = process.env[options.apiKeyEnv];
    if (key === undefined)
      throw new Error(`--api-key-env names ${options.apiKeyEnv}, which is not set`);
    simOptions.apiKey = key;
  }
  const sim = await createSimulator(simOptions);
  // stdout carries data only: the URL, so a script can read it.
  process.stdout.write(`${sim.url}\n`);
  process.stderr.write(`volley sim listening on ${sim.url} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await sim.close();
  return 0;
}
