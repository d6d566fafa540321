/**
 * The `volley` command. Parses flags (commander), runs one command, maps errors to the exit
 * codes in exit-codes.ts. Flags win over environment variables, which win over defaults.
 */
import { Argument, Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { scrubSecrets } from '@volley/core';
import { maxThreads } from 'volley';
import { registerClusterCommand } from './commands/cluster.js';
import { completionScript, SHELLS } from './commands/completion.js';
import { embedCommand } from './commands/embed.js';
import { runCommand } from './commands/run.js';
import { exitCodeFor } from './exit-codes.js';
import { EMBED_HELP_AFTER, installUsageErrors, RUN_HELP_AFTER } from './help.js';
import { DEFAULT_METRICS_HOST } from './metrics-server.js';
import { SELECT_MODES } from './run/samples/settings.js';

// `bench`, `sim` and `worker` load their modules (the benchmark kit, the simulator, the Redis
// client) when they run: at start-up they cost every `volley run` ~0.3 s of CPU.

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** `--concurrency`: a positive integer, or `auto` (a limit per endpoint that adapts to its server). */
function concurrencyFlag(value: string): number | 'auto' {
  return value === 'auto' ? 'auto' : positiveInt(value);
}

/** `--threads`: a positive integer within the machine's sane maximum (see `maxThreads`). */
function threadCount(value: string): number {
  const n = positiveInt(value);
  const cap = maxThreads();
  if (n > cap.limit) throw new InvalidArgumentError(cap.reason);
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError('must be a port number, 0 to 65535 (0 picks a free one)');
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

/** Flags `volley run` and `volley embed` share, worded once (a fresh Option for each command). */
const sharedFlag = {
  baseUrl: () =>
    new Option(
      '--base-url <url>',
      'OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (repeatable)',
    )
      .argParser(collect)
      .env('OPENAI_BASE_URL'),
  apiKeyEnv: () =>
    new Option(
      '--api-key-env <name>',
      'environment variable holding the key of the --base-url in the same position (repeatable; default OPENAI_API_KEY)',
    ).argParser(collect),
  header: () =>
    new Option(
      '--header <header>',
      "extra request header 'Name: value' sent to every endpoint (repeatable), e.g. 'OpenAI-Organization: org-1'",
    ).argParser(collect),
  auth: () =>
    new Option(
      '--auth <scheme>',
      'how keys are sent: bearer (Authorization) or api-key (Azure OpenAI); default by host',
    ).choices(['bearer', 'api-key'] as const),
  concurrency: (fallback: number) =>
    new Option(
      '-c, --concurrency <n>',
      "requests in flight at once; 'auto' adapts a limit per endpoint to its server",
    )
      .argParser(concurrencyFlag)
      .default(fallback),
  /** `work`: what runs where the mode says (run: HTTP; embed: HTTP and decoding). */
  mode: (work: string) =>
    new Option(
      '--mode <mode>',
      `where ${work} runs: one event loop, worker threads, or auto (by workload; default)`,
    ).choices(['async', 'threads', 'auto'] as const),
  threads: () =>
    new Option('--threads <n>', 'worker threads in threads mode').argParser(threadCount),
  /** `unit`: what one call serves (a line, a request). */
  maxRetries: (unit: string) =>
    new Option(
      '--max-retries <n>',
      `retries per ${unit} after the first attempt (default: 5)`,
    ).argParser(nonNegativeInt),
  timeoutMs: (unit: string) =>
    new Option(
      '--timeout-ms <ms>',
      `total time allowed per ${unit}, across retries (default: 600000)`,
    ).argParser(positiveInt),
  rpm: () =>
    new Option('--rpm <n>', 'requests-per-minute limit of each endpoint').argParser(positiveNumber),
  tpm: () =>
    new Option('--tpm <n>', 'tokens-per-minute limit of each endpoint').argParser(positiveNumber),
  maxInFlight: () =>
    new Option(
      '--max-in-flight <n>',
      'slots of each endpoint (a local server): never more in flight; its 503s are backpressure',
    ).argParser(positiveInt),
  progress: () =>
    new Option('--progress <mode>', 'progress display on stderr')
      .choices(['auto', 'tty', 'plain', 'json', 'none'] as const)
      .default('auto' as const),
  quiet: () =>
    new Option(
      '-q, --quiet',
      'no progress display or information lines; warnings and the summary stay',
    ).default(false),
  cluster: () =>
    new Option(
      '--cluster <redis-url>',
      'share the rate limits with every process using this Redis, e.g. redis://host:6379',
    ).env('VOLLEY_CLUSTER_URL'),
  clusterPrefix: () =>
    new Option(
      '--cluster-prefix <prefix>',
      'with --cluster: the prefix of every key in Redis, to keep clusters that share a Redis apart (default volley)',
    ).env('VOLLEY_CLUSTER_PREFIX'),
  metricsPort: () =>
    new Option(
      '--metrics-port <port>',
      'serve Prometheus metrics on http://<metrics-host>:<port>/metrics while running (0 picks a free port, printed on stderr)',
    ).argParser(port),
  metricsHost: () =>
    new Option(
      '--metrics-host <host>',
      `interface for --metrics-port (default ${DEFAULT_METRICS_HOST}; 0.0.0.0 exposes it to the network)`,
    ),
  metricsDump: () =>
    new Option(
      '--metrics-dump <file>',
      'write the final metrics (Prometheus text) to this file when the run ends',
    ),
};

const program = new Command()
  .name('volley')
  .description(
    'Run very large numbers of LLM calls in parallel, inside rate limits, losing and duplicating nothing.',
  )
  .version('0.1.0');

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
  .argument(
    '<input>',
    'input JSONL file, a .txt file of prompts (one per line), or - for standard input',
  )
  .addOption(
    new Option(
      '--input-format <format>',
      'jsonl, or text: one prompt per line, custom_id line-<n>, needs --model (default: text for .txt)',
    ).choices(['jsonl', 'text'] as const),
  )
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
  .addOption(sharedFlag.baseUrl())
  .addOption(sharedFlag.apiKeyEnv())
  .addOption(sharedFlag.header())
  .addOption(sharedFlag.auth())
  .option('-m, --model <name>', 'model for lines that name none')
  .option(
    '--allow-model <name>',
    'refuse lines whose model is not one of these (repeatable)',
    collect,
  )
  .addOption(sharedFlag.concurrency(64))
  .addOption(sharedFlag.rpm())
  .addOption(sharedFlag.tpm())
  .addOption(sharedFlag.maxInFlight())
  .addOption(sharedFlag.mode('HTTP'))
  .addOption(sharedFlag.threads())
  .addOption(sharedFlag.maxRetries('line'))
  .addOption(sharedFlag.timeoutMs('line'))
  .addOption(sharedFlag.progress())
  .option(
    '--progress-interval-ms <ms>',
    'how often progress is shown (default 200 on a terminal, 5000 otherwise)',
    positiveInt,
  )
  .option('--json', 'print the final summary as JSON on stdout', false)
  .addOption(sharedFlag.quiet())
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
  .option(
    '--stop-after-same-error <n>',
    'stop when the first n lines answered all failed with the same permanent error (0: never)',
    nonNegativeInt,
    20,
  )
  .option('--sync-interval-ms <ms>', 'longest a written record waits for fsync', positiveInt)
  .option('--allow-insecure-http', 'allow plain http to hosts other than loopback', false)
  .addOption(sharedFlag.cluster())
  .addOption(sharedFlag.clusterPrefix())
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
  .addOption(sharedFlag.metricsPort())
  .addOption(sharedFlag.metricsHost())
  .addOption(sharedFlag.metricsDump())
  // Cluster hook: a batch spread over the workers of --cluster (run/cluster-batch.ts).
  .option('--no-local-work', 'with --cluster: only coordinate, leave the lines to the workers')
  .option(
    '--chunk-lines <n>',
    'with --cluster: lines per chunk handed to a worker (default 100)',
    positiveInt,
  )
  .option(
    '--lease-ms <ms>',
    "with --cluster: a silent worker's chunk goes to another after this long (default 30000)",
    positiveInt,
  )
  .addHelpText('after', RUN_HELP_AFTER)
  .action(async (input, flags) => {
    process.exitCode = await runCommand({
      input,
      progress: flags.progress,
      quiet: flags.quiet,
      json: flags.json,
      overwrite: flags.overwrite,
      resume: flags.resume,
      forceResume: flags.forceResume,
      order: flags.order,
      strict: flags.strict,
      dryRun: flags.dryRun,
      graceMs: flags.graceMs,
      stopAfterSameError: flags.stopAfterSameError,
      allowInsecureHttp: flags.allowInsecureHttp,
      concurrency: flags.concurrency,
      ...(flags.baseUrl === undefined ? {} : { baseUrl: [flags.baseUrl].flat() }),
      ...definedOnly({
        apiKeyEnv: flags.apiKeyEnv,
        header: flags.header,
        auth: flags.auth,
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
        clusterPrefix: flags.clusterPrefix,
        inputFormat: flags.inputFormat,
        metricsPort: flags.metricsPort,
        metricsHost: flags.metricsHost,
        metricsDump: flags.metricsDump,
        localWork: flags.localWork,
        chunkLines: flags.chunkLines,
        leaseMs: flags.leaseMs,
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
  .addOption(sharedFlag.baseUrl())
  .addOption(sharedFlag.apiKeyEnv())
  .addOption(sharedFlag.header())
  .addOption(sharedFlag.auth())
  .addOption(sharedFlag.concurrency(16))
  .addOption(sharedFlag.rpm())
  .addOption(sharedFlag.tpm())
  .addOption(sharedFlag.maxInFlight())
  .addOption(sharedFlag.mode('HTTP and decoding'))
  .addOption(sharedFlag.threads())
  .addOption(sharedFlag.maxRetries('request'))
  .addOption(sharedFlag.timeoutMs('request'))
  .addOption(sharedFlag.progress())
  .option('--progress-interval-ms <ms>', 'how often progress is shown', positiveInt)
  .option('--json', 'print the final summary as JSON on stdout', false)
  .addOption(sharedFlag.quiet())
  .option('--max-line-bytes <n>', 'skip input lines longer than this', positiveInt)
  .option(
    '--grace-ms <ms>',
    'how long the first Ctrl-C waits for requests in flight',
    positiveInt,
    30_000,
  )
  .option(
    '--stop-after-same-error <n>',
    'stop when the first n texts answered all failed with the same permanent error (0: never)',
    nonNegativeInt,
    20,
  )
  .option('--sync-interval-ms <ms>', 'longest a written vector waits for fsync', positiveInt)
  .option('--allow-insecure-http', 'allow plain http to hosts other than loopback', false)
  .addOption(sharedFlag.cluster())
  .addOption(sharedFlag.clusterPrefix())
  .addOption(sharedFlag.metricsPort())
  .addOption(sharedFlag.metricsHost())
  .addOption(sharedFlag.metricsDump())
  .addHelpText('after', EMBED_HELP_AFTER)
  .action(async (input, flags) => {
    process.exitCode = await embedCommand({
      input,
      output: flags.output,
      progress: flags.progress,
      quiet: flags.quiet,
      json: flags.json,
      overwrite: flags.overwrite,
      resume: flags.resume,
      forceResume: flags.forceResume,
      strict: flags.strict,
      graceMs: flags.graceMs,
      stopAfterSameError: flags.stopAfterSameError,
      allowInsecureHttp: flags.allowInsecureHttp,
      concurrency: flags.concurrency,
      ...(flags.baseUrl === undefined ? {} : { baseUrl: [flags.baseUrl].flat() }),
      ...definedOnly({
        apiKeyEnv: flags.apiKeyEnv,
        header: flags.header,
        auth: flags.auth,
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
        clusterPrefix: flags.clusterPrefix,
        metricsPort: flags.metricsPort,
        metricsHost: flags.metricsHost,
        metricsDump: flags.metricsDump,
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
  .option(
    '--fault-rate <p>',
    'fraction of requests that get an injected fault (429, 500, 503 or a reset, equally)',
    fraction,
  )
  .option(
    '--stall-rate <p>',
    'fraction of requests that stall: no headers, no byte, for --stall-ms (a hung replica; hedging)',
    fraction,
  )
  .option(
    '--stall-ms <ms>',
    'how long a stalled request stays silent (default 5000)',
    nonNegativeInt,
  )
  .option('--seed <n>', 'seed for faults and latency jitter', nonNegativeInt)
  .option('--api-key-env <name>', "require this environment variable's value as the bearer key")
  // The engine model (a vLLM/llama.cpp-like server); the simulator validates the ranges.
  .option(
    '--engine-slots <n>',
    'model a server: sequences decoded together; more requests wait (turns the engine on)',
    nonNegativeNumber,
  )
  .option(
    '--prefill-ms-per-token <ms>',
    'engine: prefill cost per prompt token (default 0.05)',
    nonNegativeNumber,
  )
  .option(
    '--decode-step-ms <ms>',
    'engine: one decode step with one sequence running (default 10)',
    nonNegativeNumber,
  )
  .option(
    '--decode-step-ms-per-sequence <ms>',
    'engine: added to each step per extra running sequence (default 0.1)',
    nonNegativeNumber,
  )
  .option(
    '--max-waiting <n>',
    'engine: waiting-queue bound, 503 when full (default unbounded)',
    nonNegativeNumber,
  )
  .option(
    '--engine-jitter <f>',
    'engine: relative jitter of step times, 0..1, seeded (default 0)',
    nonNegativeNumber,
  )
  .option(
    '--max-batched-tokens <n>',
    'engine: tokens per step, decode first, then prompt chunks (default max(2048, slots))',
    nonNegativeNumber,
  )
  .action(async (flags) => {
    const { simCommand } = await import('./commands/sim.js');
    process.exitCode = await simCommand({
      port: flags.port,
      host: flags.host,
      ...definedOnly({
        rpm: flags.rpm,
        tpm: flags.tpm,
        latencyMs: flags.latencyMs,
        tokensPerSecond: flags.tokensPerSecond,
        faultRate: flags.faultRate,
        stallRate: flags.stallRate,
        stallMs: flags.stallMs,
        seed: flags.seed,
        apiKeyEnv: flags.apiKeyEnv,
        engineSlots: flags.engineSlots,
        prefillMsPerToken: flags.prefillMsPerToken,
        decodeStepMs: flags.decodeStepMs,
        decodeStepMsPerSequence: flags.decodeStepMsPerSequence,
        maxWaiting: flags.maxWaiting,
        engineJitter: flags.engineJitter,
        maxBatchedTokens: flags.maxBatchedTokens,
      }),
    });
  });

// ---------------------------------------------------------------------------------------------
// volley bench: flags named as `vllm bench serve` names them where they mean the same; Volley's
// own additions (sweeps, SLO search, stop conditions, arrivals, threads) have names of their own.
// The command lives in commands/bench.ts; this block only parses flags.
// ---------------------------------------------------------------------------------------------

function rateOrInf(value: string): number {
  if (value === 'inf' || value === 'Infinity') return Infinity;
  return positiveNumber(value);
}

function numberList(value: string): number[] {
  return value.split(',').map((part) => positiveNumber(part.trim()));
}

function intList(value: string): number[] {
  return value.split(',').map((part) => positiveInt(part.trim()));
}

// `volley bench compare a b --json`: options after a subcommand belong to it. Commander needs this
// on every level above `compare`; the program's only own options are --version and --help.
program.enablePositionalOptions();

const bench = program
  .command('bench')
  .enablePositionalOptions()
  .description(
    'Load-test an OpenAI-compatible endpoint: TTFT, TPOT, ITL, E2E, throughput, goodput, sweeps (flags as in `vllm bench serve`).',
  )
  .addOption(
    new Option(
      '--base-url <url>',
      'server base URL, e.g. http://localhost:8000/v1 (default: the embedded simulator); repeat it for replicas of one endpoint (requests go to the least busy)',
    )
      .argParser(collect)
      .env('OPENAI_BASE_URL'),
  )
  .option(
    '--endpoint <path>',
    'API path appended to --base-url, vLLM style (/v1/chat/completions or /v1/completions)',
  )
  .addOption(
    new Option('--endpoint-type <type>', 'openai (completions) or openai-chat').choices([
      'openai',
      'openai-chat',
    ] as const),
  )
  .addOption(
    new Option('--backend <type>', 'alias of --endpoint-type (vLLM)').choices([
      'openai',
      'openai-chat',
    ] as const),
  )
  .option('--model <name>', "model (default: the server's first /v1/models entry)")
  .option('--num-prompts <n>', 'requests per run (default 1000)', positiveInt)
  .addOption(
    new Option('--request-rate <rps>', 'requests per second, or inf (all at once)')
      .argParser(rateOrInf)
      .default(Infinity, 'inf'),
  )
  .option(
    '--burstiness <b>',
    'gamma shape of arrival gaps: 1 Poisson, <1 burstier, inf constant',
    rateOrInf,
  )
  .addOption(
    new Option(
      '--arrival <dist>',
      'arrival gaps (default poisson; gamma uses --burstiness)',
    ).choices(['constant', 'poisson', 'gamma'] as const),
  )
  .option(
    '--max-concurrency <n>',
    'at most n requests in flight (with rate inf: a closed loop)',
    positiveInt,
  )
  .addOption(
    new Option(
      '--ramp-up-strategy <s>',
      'rate ramps from --ramp-up-start-rps to --ramp-up-end-rps',
    ).choices(['linear', 'exponential'] as const),
  )
  .option('--ramp-up-start-rps <rps>', 'ramp-up start rate', nonNegativeNumber)
  .option('--ramp-up-end-rps <rps>', 'ramp-up end rate', positiveNumber)
  .option(
    '--num-warmups <n>',
    'warm-up requests before each run, excluded from results',
    nonNegativeInt,
    0,
  )
  .option('--duration-ms <ms>', 'stop sending after this long', positiveInt)
  .option('--max-error-rate <fraction>', 'stop when recent failures pass this share', fraction)
  .option(
    '--stop-on-saturation',
    'stop an open-loop run when TTFT and in-flight requests keep rising',
    false,
  )
  .addOption(
    new Option(
      '--dataset-name <name>',
      'random (synthetic), custom (JSONL of prompt lines), batch (OpenAI Batch file)',
    )
      .choices(['random', 'custom', 'batch'] as const)
      .default('random' as const),
  )
  .option('--dataset-path <file>', 'the custom or batch file')
  .option('--random-input-len <tokens>', 'synthetic prompt length', positiveInt, 1024)
  .option('--random-output-len <tokens>', 'max_tokens of synthetic requests', positiveInt, 128)
  .option('--random-range-ratio <r>', 'uniform lengths in [len(1-r), len(1+r)]', fraction, 0)
  .addOption(
    new Option('--input-len-dist <dist>', 'input length distribution').choices([
      'fixed',
      'uniform',
      'normal',
    ] as const),
  )
  .addOption(
    new Option('--output-len-dist <dist>', 'output length distribution').choices([
      'fixed',
      'uniform',
      'normal',
    ] as const),
  )
  .option(
    '--len-stddev-ratio <r>',
    'normal lengths: standard deviation as a share of the length',
    nonNegativeNumber,
    0.25,
  )
  .option('--output-len <tokens>', 'max_tokens for file requests that set none', positiveInt)
  .option('--no-streaming', 'send non-streaming requests (no TTFT, TPOT or ITL)')
  .option('--ignore-eos', 'ask the server to ignore EOS (vLLM; default on for random)')
  .option('--no-ignore-eos', 'do not send ignore_eos')
  .option('--goodput <slo...>', 'SLOs in ms for goodput, e.g. ttft:500 tpot:50 e2el:2000')
  .option('--slo <slo...>', 'same as --goodput (ttft=500ms,tpot=50ms also accepted)')
  .option(
    '--percentile-metrics <list>',
    'metrics with mean/median/std/pNN fields: ttft,tpot,itl,e2el',
  )
  .option('--metric-percentiles <list>', 'percentiles of those fields, e.g. 50,90,99', '99')
  .option('--seed <n>', 'seed for prompts and arrivals', nonNegativeInt, 0)
  .option(
    '--hedge',
    "with two --base-url or more: a request silent past its replica's time-to-first-byte percentile gets a copy on another replica; the first to answer wins (both are billed)",
  )
  .option(
    '--hedge-percentile <p>',
    "with --hedge: the percentile (0-100) of a replica's time to first byte to wait (default 99)",
    positiveNumber,
  )
  .option(
    '--hedge-budget <fraction>',
    'with --hedge: copies as a share of requests sent, at most (default 0.02)',
    fraction,
  )
  .option('--threads <n>', 'worker threads generating load (0: the main loop)', nonNegativeInt)
  .option(
    '--request-timeout-ms <ms>',
    'idle limit for headers and between chunks',
    positiveInt,
    600_000,
  )
  .option(
    '--sweep-concurrency <list>',
    'closed-loop runs at each concurrency, e.g. 1,2,4,8',
    intList,
  )
  .option('--sweep-rate <list>', 'open-loop runs at each rate, e.g. 1,2,5,10', numberList)
  .option(
    '--sweep-auto <points>',
    'synchronous, saturation, then rates between (points in all)',
    positiveInt,
  )
  .addOption(
    new Option(
      '--slo-search <axis>',
      'find the highest rate or concurrency meeting the SLOs',
    ).choices(['rate', 'concurrency'] as const),
  )
  .option(
    '--slo-good-fraction <f>',
    'a point passes when this share of requests is good',
    fraction,
    0.99,
  )
  .option('--slo-search-start <n>', 'first value probed', positiveNumber)
  .option('--slo-search-max <n>', 'largest value probed', positiveNumber)
  .option('--slo-search-step <n>', 'precision of the answer', positiveNumber)
  .option(
    '--repetitions <n>',
    'repeat the run n times (compare tests significance across them)',
    positiveInt,
    1,
  )
  .option('--save-result', 'write the JSON result file', false)
  .option(
    '--save-detailed',
    'include one row per request in the result (and a per-request CSV)',
    false,
  )
  .option('--result-dir <dir>', 'directory of the result file')
  .option('--result-filename <name>', 'result file name (implies --save-result)')
  .option('--csv <file>', 'write a CSV summary (one row per run)')
  .option('--html <file>', 'write a single-file HTML report that opens offline')
  .option('--label <name>', 'label of the result', 'volley-bench')
  .option(
    '--token-tolerance <fraction>',
    'allowed usage/re-count difference before a warning',
    fraction,
    0.1,
  )
  .option('--sim-latency-ms <ms>', 'embedded simulator: time to headers', nonNegativeInt, 20)
  .option(
    '--sim-tokens-per-second <n>',
    'embedded simulator: generation speed',
    nonNegativeInt,
    100,
  )
  .addOption(sharedFlag.progress())
  .option('--json', 'print the result JSON on stdout', false)
  .option(
    '--allow-insecure-http',
    'send OPENAI_API_KEY over plain http to hosts other than loopback',
    false,
  )
  .action(async (flags) => {
    const endpointType = flags.endpointType ?? flags.backend;
    const { benchCommand } = await import('./commands/bench.js');
    process.exitCode = await benchCommand({
      requestRate: flags.requestRate,
      numWarmups: flags.numWarmups,
      stopOnSaturation: flags.stopOnSaturation,
      datasetName: flags.datasetName,
      randomInputLen: flags.randomInputLen,
      randomOutputLen: flags.randomOutputLen,
      randomRangeRatio: flags.randomRangeRatio,
      lenStddevRatio: flags.lenStddevRatio,
      streaming: flags.streaming,
      metricPercentiles: flags.metricPercentiles,
      seed: flags.seed,
      requestTimeoutMs: flags.requestTimeoutMs,
      sloGoodFraction: flags.sloGoodFraction,
      repetitions: flags.repetitions,
      saveResult: flags.saveResult,
      saveDetailed: flags.saveDetailed,
      tokenTolerance: flags.tokenTolerance,
      simLatencyMs: flags.simLatencyMs,
      simTokensPerSecond: flags.simTokensPerSecond,
      progress: flags.progress,
      json: flags.json,
      label: flags.label,
      allowInsecureHttp: flags.allowInsecureHttp,
      ...(flags.goodput === undefined && flags.slo === undefined
        ? {}
        : { goodput: [...(flags.goodput ?? []), ...(flags.slo ?? [])] }),
      ...definedOnly({
        baseUrl: flags.baseUrl,
        endpoint: flags.endpoint,
        endpointType,
        model: flags.model,
        numPrompts: flags.numPrompts,
        burstiness: flags.burstiness,
        arrival: flags.arrival,
        maxConcurrency: flags.maxConcurrency,
        rampUpStrategy: flags.rampUpStrategy,
        rampUpStartRps: flags.rampUpStartRps,
        rampUpEndRps: flags.rampUpEndRps,
        durationMs: flags.durationMs,
        maxErrorRate: flags.maxErrorRate,
        datasetPath: flags.datasetPath,
        inputLenDist: flags.inputLenDist,
        outputLenDist: flags.outputLenDist,
        outputLen: flags.outputLen,
        ignoreEos: flags.ignoreEos,
        percentileMetrics: flags.percentileMetrics,
        threads: flags.threads,
        hedge: flags.hedge,
        hedgePercentile: flags.hedgePercentile,
        hedgeBudget: flags.hedgeBudget,
        sweepConcurrency: flags.sweepConcurrency,
        sweepRate: flags.sweepRate,
        sweepAuto: flags.sweepAuto,
        sloSearch: flags.sloSearch,
        sloSearchStart: flags.sloSearchStart,
        sloSearchMax: flags.sloSearchMax,
        sloSearchStep: flags.sloSearchStep,
        resultDir: flags.resultDir,
        resultFilename: flags.resultFilename,
        csv: flags.csv,
        html: flags.html,
      }),
    });
  });

bench
  .command('compare')
  .description('Compare two `volley bench` result files (significance with --repetitions).')
  .argument('<a>', 'baseline result JSON')
  .argument('<b>', 'result JSON to compare with it')
  .option('--json', 'print the comparison as JSON', false)
  .action(async (a, b, flags) => {
    const { benchCompareCommand } = await import('./commands/bench.js');
    process.exitCode = await benchCompareCommand(a, b, flags.json);
  });

// ---------------------------------------------------------------------------------------------
// end of volley bench
// ---------------------------------------------------------------------------------------------

// `volley cluster status`: shared limits (commands/cluster.ts).
registerClusterCommand(program);

// `volley worker`: serves the batches of a cluster (commands/worker.ts).
program
  .command('worker')
  .description(
    'Join a cluster and run the chunks of lines that `volley run --cluster` hands out, with this host’s endpoints and limits.',
  )
  .addOption(
    new Option('--cluster <redis-url>', 'the Redis the cluster shares, redis://host:6379')
      .env('VOLLEY_CLUSTER_URL')
      .makeOptionMandatory(),
  )
  .addOption(sharedFlag.clusterPrefix())
  .addOption(sharedFlag.baseUrl())
  .addOption(sharedFlag.apiKeyEnv())
  .addOption(sharedFlag.header())
  .addOption(sharedFlag.auth())
  .addOption(sharedFlag.concurrency(64))
  .addOption(sharedFlag.rpm())
  .addOption(sharedFlag.tpm())
  .addOption(sharedFlag.maxInFlight())
  .addOption(sharedFlag.mode('HTTP'))
  .addOption(sharedFlag.threads())
  .addOption(sharedFlag.maxRetries('line'))
  .addOption(sharedFlag.timeoutMs('line'))
  .option('--allow-insecure-http', 'allow plain http to hosts other than loopback', false)
  .option(
    '--grace-ms <ms>',
    'how long the first signal waits for lines in flight',
    positiveInt,
    30_000,
  )
  .option('-q, --quiet', 'no information lines', false)
  .option('--json', 'print a JSON summary on stdout when it stops', false)
  .addOption(sharedFlag.metricsPort())
  .addOption(sharedFlag.metricsHost())
  .addOption(sharedFlag.metricsDump())
  .action(async (flags) => {
    const { workerCommand } = await import('./commands/worker.js');
    process.exitCode = await workerCommand({
      cluster: flags.cluster,
      concurrency: flags.concurrency,
      graceMs: flags.graceMs,
      quiet: flags.quiet,
      json: flags.json,
      allowInsecureHttp: flags.allowInsecureHttp,
      ...(flags.baseUrl === undefined ? {} : { baseUrl: [flags.baseUrl].flat() }),
      ...definedOnly({
        apiKeyEnv: flags.apiKeyEnv,
        header: flags.header,
        auth: flags.auth,
        rpm: flags.rpm,
        tpm: flags.tpm,
        maxInFlight: flags.maxInFlight,
        mode: flags.mode,
        threads: flags.threads,
        maxRetries: flags.maxRetries,
        timeoutMs: flags.timeoutMs,
        clusterPrefix: flags.clusterPrefix,
        metricsPort: flags.metricsPort,
        metricsHost: flags.metricsHost,
        metricsDump: flags.metricsDump,
      }),
    });
  });

program
  .command('completion')
  .description('Print a shell completion script (bash, zsh or fish) for volley.')
  .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
  .addHelpText(
    'after',
    `
Examples:
  source <(volley completion bash)                                   (this shell)
  volley completion bash > ~/.local/share/bash-completion/completions/volley
  volley completion fish > ~/.config/fish/completions/volley.fish
  echo 'source <(volley completion zsh)' >> ~/.zshrc
`,
  )
  .action((shell) => {
    process.stdout.write(completionScript(program as never, shell));
  });

// --log-level: on the program and on every command, so it may come before or after the command
// name. It sets VOLLEY_LOG_LEVEL, which the runtime reads: the flag wins over the variable.
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
function logLevelOption(): Option {
  return new Option(
    '--log-level <level>',
    'JSON log lines on stderr at this level and above (default: $VOLLEY_LOG_LEVEL, else none)',
  ).choices(LOG_LEVELS);
}
function addLogLevel(
  command: Command<unknown[], Record<string, unknown>, Record<string, unknown>>,
): void {
  command.addOption(logLevelOption());
  for (const sub of command.commands) addLogLevel(sub as typeof command);
}
addLogLevel(program as never);
program.hook('preAction', (_program, action) => {
  let level: unknown;
  for (let command: typeof action | null = action; command !== null; command = command.parent) {
    level ??= command.opts().logLevel;
  }
  if (typeof level === 'string') process.env.VOLLEY_LOG_LEVEL = level;
});

// Last: every command is in place, each gets the one-line refusal of a bad command line.
installUsageErrors(program as never);

try {
  await program.parseAsync();
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`volley: ${scrubSecrets(message)}\n`);
  process.exitCode = exitCodeFor(error);
}
