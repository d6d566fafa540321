/**
 * The `volley` command. Parses flags (commander), runs one command, maps errors to the exit
 * codes in exit-codes.ts. Flags win over environment variables, which win over defaults.
 */
import type { CommanderError } from '@commander-js/extra-typings';
import { Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { scrubSecrets } from '@volley/core';
import { registerClusterCommand } from './commands/cluster.js';
import { embedCommand } from './commands/embed.js';
import { runCommand } from './commands/run.js';
import { simCommand } from './commands/sim.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { SELECT_MODES } from './run/samples/settings.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be between 0 and 1');
  return n;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * The entries whose value is set: optional flags left out, so that options objects never carry
 * an explicit `undefined` (`exactOptionalPropertyTypes`).
 */
function definedOnly<T extends Record<string, unknown>>(
  values: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) if (value !== undefined) out[key] = value;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/**
 * Commander's own refusals (a bad flag value, an unknown option) are usage errors: exit 2, as
 * documented, not commander's 1. It has already printed the message; help and --version exit 0.
 */
function exitOnUsageError(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? 0 : ExitCode.USAGE);
}

const program = new Command()
  .name('volley')
  .description(
    'Run very large numbers of LLM calls in parallel, inside rate limits, losing and duplicating nothing.',
  )
  .version('0.1.0')
  .showHelpAfterError()
  // Set before the commands are added: each one inherits it.
  .exitOverride(exitOnUsageError);

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a number >= 0');
  return n;
}

program
  .command('run')
  .description(
    'Send an OpenAI Batch JSONL file (or lines with just "prompt"/"messages"/"input") and write one result per custom_id.',
  )
  .argument('<input>', 'input JSONL file, or - for standard input')
  .option(
    '-o, --output <file>',
    'results file (OpenAI Batch output lines), or - for standard output; required unless --dry-run',
  )
  .option('-e, --errors <file>', 'failed lines (default: <output stem>.errors.jsonl)')
  .option(
    '--retry-file <file>',
    'input lines of failed requests, ready to feed back (default: <output stem>.retry.jsonl)',
  )
  .option(
    '--resume',
    'continue an interrupted run: skip finished lines, retry transient failures',
    false,
  )
  .option(
    '--force-resume',
    'resume even though the configuration or some lines changed (keeps earlier results)',
    false,
  )
  .option('--overwrite', 'start over, replacing existing output files', false)
  .addOption(
    new Option('--order <order>', 'order of records in the output files')
      .choices(['completion', 'input'] as const)
      .default('completion' as const),
  )
  .option(
    '--reorder-window <lines>',
    'with --order input: most lines between the oldest unwritten one and the newest read',
    positiveInt,
  )
  .option('--strict', 'any bad line stops the run (before anything is sent, for files)', false)
  .option('--dry-run', 'validate and estimate tokens (and cost); send nothing', false)
  .addOption(
    new Option(
      '--base-url <url>',
      'OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (repeatable)',
    )
      .argParser(collect)
      .env('OPENAI_BASE_URL'),
  )
  .option('-m, --model <name>', 'model for lines that name none')
  .option(
    '--allow-model <name>',
    'refuse lines whose model is not one of these (repeatable)',
    collect,
  )
  .option('-c, --concurrency <n>', 'requests in flight at once', positiveInt, 64)
  .option('--rpm <n>', 'requests-per-minute limit of each endpoint', positiveNumber)
  .option('--tpm <n>', 'tokens-per-minute limit of each endpoint', positiveNumber)
  .option(
    '--max-in-flight <n>',
    'slots of each endpoint (a local server): never more in flight; its 503s are backpressure',
    positiveInt,
  )
  .addOption(
    new Option(
      '--mode <mode>',
      'where HTTP runs: one event loop, worker threads, or auto (by workload)',
    ).choices(['async', 'threads', 'auto'] as const),
  )
  .option('--threads <n>', 'worker threads in threads mode', positiveInt)
  .option('--max-retries <n>', 'retries per line after the first attempt', nonNegativeInt)
  .option('--timeout-ms <ms>', 'total time allowed per line, across retries', positiveInt)
  .addOption(
    new Option('--progress <mode>', 'progress display on stderr')
      .choices(['auto', 'tty', 'plain', 'json', 'none'] as const)
      .default('auto' as const),
  )
  .option(
    '--progress-interval-ms <ms>',
    'how often progress is shown (default 200 on a terminal, 5000 otherwise)',
    positiveInt,
  )
  .option('--json', 'print the final summary as JSON on stdout', false)
  .option('--max-line-bytes <n>', 'skip input lines longer than this', positiveInt)
  .option(
    '--max-prompt-tokens <n>',
    'refuse lines whose estimated prompt is longer (VOLLEY_INPUT_PROMPT_TOO_LONG)',
    positiveInt,
  )
  .option(
    '--price-input <usd>',
    'price of input tokens, USD per million (every model)',
    nonNegativeNumber,
  )
  .option(
    '--price-output <usd>',
    'price of output tokens, USD per million (every model)',
    nonNegativeNumber,
  )
  .option('--prices <file>', 'JSON price table: {"model": {"input": usd, "output": usd}, "*": ...}')
  .option(
    '--grace-ms <ms>',
    'how long the first Ctrl-C waits for in-flight lines',
    positiveInt,
    30_000,
  )
  .option('--sync-interval-ms <ms>', 'longest a written record waits for fsync', positiveInt)
  .option('--allow-insecure-http', 'allow plain http to hosts other than loopback', false)
  .addOption(
    new Option(
      '--cluster <redis-url>',
      'share the rate limits with every process using this Redis, e.g. redis://host:6379',
    ).env('VOLLEY_CLUSTER_URL'),
  )
  .option(
    '--samples <n>',
    "send each line's request n times at once and write one record from the samples (see --select)",
    positiveInt,
  )
  .addOption(
    new Option(
      '--select <mode>',
      "a sampled line's record: all (every sample's choices), vote (the most common answer), judge (an LLM picks one); default all",
    ).choices(SELECT_MODES),
  )
  .option('--judge-model <name>', "--select judge: the judge's model (default: the line's)")
  .option('--judge-instructions <text>', "--select judge: the judge's system prompt")
  .action(async (input, flags) => {
    process.exitCode = await runCommand({
      input,
      progress: flags.progress,
      json: flags.json,
      overwrite: flags.overwrite,
      resume: flags.resume,
      forceResume: flags.forceResume,
      order: flags.order,
      strict: flags.strict,
      dryRun: flags.dryRun,
      graceMs: flags.graceMs,
      allowInsecureHttp: flags.allowInsecureHttp,
      concurrency: flags.concurrency,
      ...(flags.baseUrl === undefined ? {} : { baseUrl: [flags.baseUrl].flat() }),
      ...definedOnly({
        output: flags.output,
        errors: flags.errors,
        retryFile: flags.retryFile,
        reorderWindow: flags.reorderWindow,
        model: flags.model,
        allowModel: flags.allowModel,
        rpm: flags.rpm,
        tpm: flags.tpm,
        maxInFlight: flags.maxInFlight,
        mode: flags.mode,
        threads: flags.threads,
        maxRetries: flags.maxRetries,
        timeoutMs: flags.timeoutMs,
        maxLineBytes: flags.maxLineBytes,
        maxPromptTokens: flags.maxPromptTokens,
        priceInput: flags.priceInput,
        priceOutput: flags.priceOutput,
        prices: flags.prices,
        syncIntervalMs: flags.syncIntervalMs,
        progressIntervalMs: flags.progressIntervalMs,
        samples: flags.samples,
        select: flags.select,
        judgeModel: flags.judgeModel,
        judgeInstructions: flags.judgeInstructions,
        cluster: flags.cluster,
      }),
    });
  });

program
  .command('embed')
  .description(
    'Embed every text of a file ({"id","text"} or OpenAI Batch /v1/embeddings lines, or plain text lines) and write one vector per id.',
  )
  .argument('<input>', 'input file: JSONL, or plain text (one text per line; .txt)')
  .requiredOption(
    '-o, --output <file>',
    'vectors: .jsonl ({"id","embedding"} lines), .npy (NumPy float32 matrix) or .f32 (raw float32 rows)',
  )
  .addOption(
    new Option('--format <format>', 'output layout (default: from the output extension)').choices([
      'jsonl',
      'npy',
      'f32',
    ] as const),
  )
  .option('--ids <file>', 'ids of a binary output, row by row (default: <output stem>.ids.jsonl)')
  .option('-e, --errors <file>', 'failed lines (default: <output stem>.errors.jsonl)')
  .addOption(
    new Option(
      '--input-format <format>',
      'how input lines are read (default: text for .txt)',
    ).choices(['jsonl', 'text'] as const),
  )
  .option(
    '-m, --model <name>',
    'embedding model (required with --base-url; the simulator has its own)',
  )
  .option(
    '--dimensions <n>',
    'ask for vectors of this length (models that support it)',
    positiveInt,
  )
  .option(
    '--batch-size <n>',
    'inputs per request (default 256; 2048 when every endpoint is OpenAI)',
    positiveInt,
  )
  .option(
    '--max-tokens-per-request <n>',
    'estimated tokens per request (default 100000)',
    positiveInt,
  )
  .option(
    '--resume',
    'continue an interrupted run: skip ids with a vector, retry transient failures',
    false,
  )
  .option('--force-resume', 'resume even though the configuration changed', false)
  .option('--overwrite', 'start over, replacing existing output files', false)
  .option('--strict', 'any bad line stops the run before anything is sent', false)
  .addOption(
    new Option(
      '--base-url <url>',
      'OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (repeatable)',
    )
      .argParser(collect)
      .env('OPENAI_BASE_URL'),
  )
  .option('-c, --concurrency <n>', 'requests in flight at once', positiveInt, 16)
  .option('--rpm <n>', 'requests-per-minute limit of each endpoint', positiveNumber)
  .option('--tpm <n>', 'tokens-per-minute limit of each endpoint', positiveNumber)
  .option(
    '--max-in-flight <n>',
    'slots of each endpoint (a local server): never more in flight; its 503s are backpressure',
    positiveInt,
  )
  .addOption(
    new Option(
      '--mode <mode>',
      'where HTTP and decoding run: one event loop, worker threads, or auto',
    ).choices(['async', 'threads', 'auto'] as const),
  )
  .option('--threads <n>', 'worker threads in threads mode', positiveInt)
  .option('--max-retries <n>', 'retries per request after the first attempt', nonNegativeInt)
  .option('--timeout-ms <ms>', 'total time allowed per request, across retries', positiveInt)
  .addOption(
    new Option('--progress <mode>', 'progress display on stderr')
      .choices(['auto', 'tty', 'plain', 'json', 'none'] as const)
      .default('auto' as const),
  )
  .option('--progress-interval-ms <ms>', 'how often progress is shown', positiveInt)
  .option('--json', 'print the final summary as JSON on stdout', false)
  .option('--max-line-bytes <n>', 'skip input lines longer than this', positiveInt)
  .option(
    '--grace-ms <ms>',
    'how long the first Ctrl-C waits for requests in flight',
    positiveInt,
    30_000,
  )
  .option('--sync-interval-ms <ms>', 'longest a written vector waits for fsync', positiveInt)
  .option('--allow-insecure-http', 'allow plain http to hosts other than loopback', false)
  .addOption(
    new Option(
      '--cluster <redis-url>',
      'share the rate limits with every process using this Redis, e.g. redis://host:6379',
    ).env('VOLLEY_CLUSTER_URL'),
  )
  .action(async (input, flags) => {
    process.exitCode = await embedCommand({
      input,
      output: flags.output,
      progress: flags.progress,
      json: flags.json,
      overwrite: flags.overwrite,
      resume: flags.resume,
      forceResume: flags.forceResume,
      strict: flags.strict,
      graceMs: flags.graceMs,
      allowInsecureHttp: flags.allowInsecureHttp,
      concurrency: flags.concurrency,
      ...(flags.baseUrl === undefined ? {} : { baseUrl: [flags.baseUrl].flat() }),
      ...definedOnly({
        format: flags.format,
        ids: flags.ids,
        errors: flags.errors,
        inputFormat: flags.inputFormat,
        model: flags.model,
        dimensions: flags.dimensions,
        batchSize: flags.batchSize,
        maxTokensPerRequest: flags.maxTokensPerRequest,
        rpm: flags.rpm,
        tpm: flags.tpm,
        maxInFlight: flags.maxInFlight,
        mode: flags.mode,
        threads: flags.threads,
        maxRetries: flags.maxRetries,
        timeoutMs: flags.timeoutMs,
        maxLineBytes: flags.maxLineBytes,
        syncIntervalMs: flags.syncIntervalMs,
        progressIntervalMs: flags.progressIntervalMs,
        cluster: flags.cluster,
      }),
    });
  });

program
  .command('sim')
  .description('Start the OpenAI-compatible simulator (prints its base URL on stdout).')
  .option('-p, --port <n>', 'port (0 picks a free one)', nonNegativeInt, 0)
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--rpm <n>', 'enforce a requests-per-minute limit (answers 429)', positiveNumber)
  .option('--tpm <n>', 'enforce a tokens-per-minute limit (answers 429)', positiveNumber)
  .option('--latency-ms <ms>', 'delay before response headers', nonNegativeInt)
  .option('--tokens-per-second <n>', 'generation speed (0 = instant)', nonNegativeInt)
  .option('--fault-rate <p>', 'fraction of requests that get an injected fault', fraction)
  .option('--seed <n>', 'seed for faults and latency jitter', nonNegativeInt)
  .option('--api-key-env <name>', "require this environment variable's value as the bearer key")
  .action(async (flags) => {
    process.exitCode = await simCommand({
      port: flags.port,
      host: flags.host,
      ...(flags.rpm === undefined ? {} : { rpm: flags.rpm }),
      ...(flags.tpm === undefined ? {} : { tpm: flags.tpm }),
      ...(flags.latencyMs === undefined ? {} : { latencyMs: flags.latencyMs }),
      ...(flags.tokensPerSecond === undefined ? {} : { tokensPerSecond: flags.tokensPerSecond }),
      ...(flags.faultRate === undefined ? {} : { faultRate: flags.faultRate }),
      ...(flags.seed === undefined ? {} : { seed: flags.seed }),
      ...(flags.apiKeyEnv === undefined ? {} : { apiKeyEnv: flags.apiKeyEnv }),
    });
  });

// `volley cluster status`: shared limits (commands/cluster.ts).
registerClusterCommand(program);

try {
  await program.parseAsync();
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`volley: ${scrubSecrets(message)}\n`);
  process.exitCode = exitCodeFor(error);
}
