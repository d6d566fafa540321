/**
 * `volley sim`: the OpenAI-compatible simulator as a standalone server, for pointing other
 * clients (the OpenAI SDK, benchmarks, your own pipeline) at something that behaves like an LLM.
 */
import type { EngineOptions, FaultKind, Simulator, SimulatorOptions } from '@volley/sim';
import { createSimulator, SimulatorOptionError } from '@volley/sim';
import type { CliErrorCode } from '../codes.js';
import { CliError, ExitCode } from '../exit-codes.js';

export interface SimCommandOptions {
  port: number;
  host: string;
  rpm?: number;
  tpm?: number;
  latencyMs?: number;
  tokensPerSecond?: number;
  faultRate?: number;
  /** Requests that stall (the `slow-headers` fault: nothing sent for `stallMs`). */
  stallRate?: number;
  stallMs?: number;
  seed?: number;
  apiKeyEnv?: string;
  engineSlots?: number;
  prefillMsPerToken?: number;
  decodeStepMs?: number;
  decodeStepMsPerSequence?: number;
  maxWaiting?: number;
  engineJitter?: number;
  maxBatchedTokens?: number;
}

/** Faults `--fault-rate` draws from, equally: what servers under load and networks do. */
const CLI_FAULT_KINDS: readonly FaultKind[] = [
  'status-429',
  'status-500',
  'status-503',
  'reset-before-headers',
  'reset-mid-stream',
];

/** The flag behind each simulator option the command sets, so a refusal names what was typed. */
const FLAGS: Readonly<Record<string, string>> = {
  port: '--port',
  host: '--host',
  seed: '--seed',
  'limits.rpm': '--rpm',
  'limits.tpm': '--tpm',
  'latency.headersMs': '--latency-ms',
  'latency.tokensPerSecond': '--tokens-per-second',
  'faults.rate': '--fault-rate',
  'faults.slowMs': '--stall-ms',
  'engine.slots': '--engine-slots',
  'engine.prefillMsPerToken': '--prefill-ms-per-token',
  'engine.decodeStepMs': '--decode-step-ms',
  'engine.decodeStepMsPerSequence': '--decode-step-ms-per-sequence',
  'engine.maxWaiting': '--max-waiting',
  'engine.jitter': '--engine-jitter',
  'engine.maxBatchedTokens': '--max-batched-tokens',
};

/** The engine flags that only mean something with `--engine-slots`. */
const ENGINE_FLAGS = {
  prefillMsPerToken: '--prefill-ms-per-token',
  decodeStepMs: '--decode-step-ms',
  decodeStepMsPerSequence: '--decode-step-ms-per-sequence',
  maxWaiting: '--max-waiting',
  engineJitter: '--engine-jitter',
  maxBatchedTokens: '--max-batched-tokens',
} as const;

function usageError(message: string, code: CliErrorCode = 'VOLLEY_ERR_USAGE'): CliError {
  return new CliError(message, ExitCode.USAGE, code);
}

function engineOptions(options: SimCommandOptions): EngineOptions | undefined {
  if (options.engineSlots === undefined) {
    for (const [key, flag] of Object.entries(ENGINE_FLAGS)) {
      if (options[key as keyof typeof ENGINE_FLAGS] !== undefined) {
        throw usageError(`${flag} needs --engine-slots (the engine model is off without it)`);
      }
    }
    return undefined;
  }
  const engine: EngineOptions = { slots: options.engineSlots };
  if (options.prefillMsPerToken !== undefined) engine.prefillMsPerToken = options.prefillMsPerToken;
  if (options.decodeStepMs !== undefined) engine.decodeStepMs = options.decodeStepMs;
  if (options.decodeStepMsPerSequence !== undefined)
    engine.decodeStepMsPerSequence = options.decodeStepMsPerSequence;
  if (options.maxWaiting !== undefined) engine.maxWaiting = options.maxWaiting;
  if (options.engineJitter !== undefined) engine.jitter = options.engineJitter;
  if (options.maxBatchedTokens !== undefined) engine.maxBatchedTokens = options.maxBatchedTokens;
  return engine;
}

/** Starts the simulator; an option it refuses becomes a usage error naming the flag. */
async function start(simOptions: SimulatorOptions): Promise<Simulator> {
  try {
    return await createSimulator(simOptions);
  } catch (error) {
    if (!(error instanceof SimulatorOptionError)) throw error;
    const flag = FLAGS[error.option];
    if (flag === undefined) throw error;
    const message = error.message.replace(`simulator option "${error.option}"`, flag);
    throw usageError(message, error.code);
  }
}

/** What the engine will do, with its hint endpoints (empty without the engine). */
function describeEngine(sim: Simulator): string {
  const engine = sim.engineState();
  if (engine === undefined) return '';
  const origin = sim.url.slice(0, -'/v1'.length);
  const queue =
    engine.maxWaiting === null ? 'unbounded queue' : `queue of ${engine.maxWaiting} (then 503)`;
  return (
    `engine: ${engine.slots} slots, prefill ${engine.prefillMsPerToken} ms/token, ` +
    `decode step ${engine.decodeStepMs} ms + ${engine.decodeStepMsPerSequence} ms per extra sequence, ` +
    `${engine.maxBatchedTokens} tokens per step, ${queue}, jitter ${engine.jitter}\n` +
    `hints: ${origin}/metrics ${origin}/slots ${origin}/props ${origin}/sim/engine\n`
  );
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
  const faultRate = options.faultRate ?? 0;
  const stallRate = options.stallRate ?? 0;
  if (options.stallMs !== undefined && options.stallRate === undefined)
    throw usageError('--stall-ms needs --stall-rate');
  if (options.faultRate !== undefined || options.stallRate !== undefined) {
    // One draw per request: a fault at the two rates together, then which one by weight.
    const kinds: Partial<Record<FaultKind, number>> = {};
    for (const kind of CLI_FAULT_KINDS) if (faultRate > 0) kinds[kind] = faultRate;
    if (stallRate > 0) kinds['slow-headers'] = stallRate * CLI_FAULT_KINDS.length;
    simOptions.faults = {
      rate: Math.min(1, faultRate + stallRate),
      kinds,
      ...(options.stallMs === undefined ? {} : { slowMs: options.stallMs }),
    };
  }
  const engine = engineOptions(options);
  if (engine !== undefined) simOptions.engine = engine;
  if (options.apiKeyEnv !== undefined) {
    const key = process.env[options.apiKeyEnv];
    if (key === undefined)
      throw new Error(`--api-key-env names ${options.apiKeyEnv}, which is not set`);
    simOptions.apiKey = key;
  }
  const sim = await start(simOptions);
  // stdout carries data only: the URL, so a script can read it.
  process.stdout.write(`${sim.url}\n`);
  process.stderr.write(
    `volley sim listening on ${sim.url} (Ctrl-C to stop)\n${describeEngine(sim)}`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await sim.close();
  return 0;
}
