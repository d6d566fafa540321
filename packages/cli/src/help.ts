/**
 * What `--help` says beyond the flags (examples, environment, exit codes), and how a mistyped
 * command line is refused: one line with commander's suggestion and where to read more, exit 2,
 * never the whole help (a 60-line help scrolls the one useful line away; cargo, uv and git print
 * one line too).
 */
import type { Command, CommanderError, OptionValues } from '@commander-js/extra-typings';
import { ExitCode } from './exit-codes.js';

/** The environment variables every sending command reads. */
const ENVIRONMENT = `Environment:
  OPENAI_BASE_URL     default --base-url (unset: the embedded simulator answers)
  OPENAI_API_KEY      API key sent as "Authorization: Bearer" (never printed)
  VOLLEY_CLUSTER_URL  default --cluster
  VOLLEY_LOG_LEVEL    runtime logs as JSON lines on stderr: debug, info, warn (default: off)
  NO_COLOR            set: no colour on the terminal`;

const EXIT_CODES = `Exit codes:
  0    every line succeeded
  1    finished, some lines failed (see the errors file)
  2    usage or input error, or output locked: nothing sent
  3    stopped (auth, quota, every endpoint down): rerun with --resume
  4    an output file could not be written: free space, rerun with --resume
  130  interrupted (Ctrl-C), 143 terminated (SIGTERM): rerun with --resume`;

/** `volley run --help`, after the flags. */
export const RUN_HELP_AFTER = `
Examples:
  volley run requests.jsonl -o results.jsonl
  volley run prompts.txt -o results.jsonl -m gpt-4o-mini   (one prompt per line)
  volley run requests.jsonl -o results.jsonl --base-url http://localhost:8000/v1 -c 128
  volley run requests.jsonl -o results.jsonl --resume        (after Ctrl-C or exit 3/4)
  volley run requests.jsonl --dry-run --price-input 0.15 --price-output 0.6
  cat requests.jsonl | volley run - -o - > results.jsonl

Defaults: --max-retries 5, --timeout-ms 600000 (10 min per line), --mode auto,
  errors to <output stem>.errors.jsonl, retry lines to <output stem>.retry.jsonl.

${ENVIRONMENT}

${EXIT_CODES}
`;

/** `volley embed --help`, after the flags. */
export const EMBED_HELP_AFTER = `
Examples:
  volley embed docs.jsonl -o vectors.npy -m text-embedding-3-small
  volley embed lines.txt -o vectors.jsonl -m text-embedding-3-small   (one text per line)
  volley embed docs.jsonl -o vectors.f32 --base-url http://localhost:8000/v1 -m bge-m3
  volley embed docs.jsonl -o vectors.npy -m text-embedding-3-small --resume

Defaults: --max-retries 5, --timeout-ms 600000 (10 min per request), --mode auto,
  --batch-size 256 (2048 when every endpoint is OpenAI), ids to <output stem>.ids.jsonl.

${ENVIRONMENT}

${EXIT_CODES}
`;

/** Any command of the program, whatever its arguments and options. */
export type AnyCommand = Command<unknown[], OptionValues, OptionValues>;

/** `volley <command>` as typed, e.g. `volley bench compare`. */
export function commandPath(command: AnyCommand): string {
  const names: string[] = [];
  for (let c: AnyCommand | null = command; c !== null; c = c.parent as AnyCommand | null) {
    names.unshift(c.name());
  }
  return names.join(' ');
}

/** Flags people try that Volley spells differently, and what to use instead. */
const INSTEAD: Record<string, string> = {
  '--api-key': 'set OPENAI_API_KEY instead',
  '-v': 'use -V for the version',
  '--version': 'use volley --version',
};

/**
 * Commander's message, as one line: `error: ` dropped and its `(Did you mean …?)` line joined,
 * followed by where to read more.
 *
 * @example
 * usageLine("error: unknown option '--concurency'\n(Did you mean --concurrency?)", 'volley run')
 * // "volley: unknown option '--concurency' (did you mean --concurrency?); see volley run --help"
 */
export function usageLine(message: string, path: string): string {
  let text = message
    .replace(/^error: /, '')
    .replace(/\s*\n\(Did you mean (.*)\)/, ' (did you mean $1)')
    .replace(/\s*\n\s*/g, ' ')
    .trim()
    .replace(/\.$/, '');
  const flag = /^unknown option '([^']+)'/.exec(text)?.[1];
  const instead = flag === undefined ? undefined : INSTEAD[flag.split('=')[0] ?? flag];
  if (instead !== undefined && !text.includes('did you mean')) text += ` (${instead})`;
  return `volley: ${text}; see ${path} --help`;
}

/**
 * Makes every command (and subcommand) refuse a bad command line with {@link usageLine} on
 * stderr and exit 2. `--help` and `--version` still print to stdout and exit 0; `volley` alone
 * still prints the help (to stderr), exit 2. Call after every command is added.
 */
export function installUsageErrors(program: AnyCommand): void {
  const visit = (command: AnyCommand): void => {
    const path = commandPath(command);
    command.configureOutput({
      // Commander writes its error message here before it exits: hold it back and print the
      // one-line form in the exit handler instead (help output does not pass through here).
      outputError: () => undefined,
    });
    command.exitOverride((error: CommanderError) => {
      if (error.exitCode === 0) process.exit(0);
      // `volley` or `volley bench` with no command: the help, already shown, is the message.
      if (error.code !== 'commander.help' && error.code !== 'commander.helpDisplayed') {
        process.stderr.write(`${usageLine(error.message, path)}\n`);
      }
      process.exit(ExitCode.USAGE);
    });
    for (const sub of command.commands) visit(sub as AnyCommand);
  };
  visit(program);
}
