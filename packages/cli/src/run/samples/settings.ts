/**
 * `volley run --samples N --select all|vote|judge`: what the flags mean, checked once.
 *
 * Every other module takes a {@link SamplingSettings} (or `undefined`: one call per line, as
 * without the flags), so the rules about which flags go together live here and nowhere else.
 */

import { CliError, ExitCode } from '../../exit-codes.js';

/** How the record of a sampled line is chosen from its samples. */
export type SelectMode = 'all' | 'vote' | 'judge';

/** The `--select` values, for the flag's choices. */
export const SELECT_MODES = ['all', 'vote', 'judge'] as const satisfies readonly SelectMode[];

/** Most samples per line: OpenAI's own cap on `n`, and a bound on what one line holds in memory. */
export const MAX_SAMPLES = 128;

/** The sampling a run does; part of its configuration hash. */
export interface SamplingSettings {
  /** Requests per line, at least 2. */
  samples: number;
  select: SelectMode;
  /** `--select judge`: the judge's model; null for each line's own model. */
  judgeModel: string | null;
  /** `--select judge`: the judge's system prompt; null for the default. */
  judgeInstructions: string | null;
}

/** The sampling flags as given. */
export interface SamplingFlags {
  samples?: number | undefined;
  select?: SelectMode | undefined;
  judgeModel?: string | undefined;
  judgeInstructions?: string | undefined;
}

/**
 * Checks the sampling flags and resolves them: undefined when lines are sent once (no
 * `--samples`, or `--samples 1`). Contradictions are usage errors (exit 2), never ignored: a
 * `--select vote` that silently did nothing would look like a vote that agreed.
 *
 * @example
 * resolveSampling({ samples: 5, select: 'vote' }); // { samples: 5, select: 'vote', judgeModel: null, ... }
 * resolveSampling({ select: 'vote' }); // throws: --select vote needs --samples 2 or more
 */
export function resolveSampling(flags: SamplingFlags): SamplingSettings | undefined {
  const usage = (message: string): CliError =>
    new CliError(message, ExitCode.USAGE, 'VOLLEY_ERR_USAGE');
  const { samples } = flags;
  if (samples !== undefined && !(Number.isInteger(samples) && samples >= 1)) {
    throw usage(`--samples must be a positive integer, got ${String(samples)}`);
  }
  if (samples !== undefined && samples > MAX_SAMPLES) {
    throw usage(`--samples is at most ${MAX_SAMPLES}, got ${samples}`);
  }
  if (samples === undefined || samples === 1) {
    if (flags.select !== undefined) {
      throw usage(
        `--select ${flags.select} needs --samples 2 or more: with one sample per line there is nothing to choose from`,
      );
    }
    if (flags.judgeModel !== undefined || flags.judgeInstructions !== undefined) {
      throw usage('--judge-model and --judge-instructions need --samples 2 or more --select judge');
    }
    return undefined;
  }
  const select = flags.select ?? 'all';
  if (
    select !== 'judge' &&
    (flags.judgeModel !== undefined || flags.judgeInstructions !== undefined)
  ) {
    throw usage(
      `--judge-model and --judge-instructions apply to --select judge only, not --select ${select}`,
    );
  }
  if (flags.judgeModel !== undefined && flags.judgeModel.trim() === '') {
    throw usage('--judge-model must name a model');
  }
  if (flags.judgeInstructions !== undefined && flags.judgeInstructions.trim() === '') {
    throw usage('--judge-instructions must not be empty');
  }
  return {
    samples,
    select,
    judgeModel: flags.judgeModel ?? null,
    judgeInstructions: flags.judgeInstructions ?? null,
  };
}

/** The settings as flags, for messages and the state file: `--samples 5 --select vote`. */
export function describeSampling(settings: SamplingSettings | undefined): string {
  if (settings === undefined) return 'one request per line';
  const parts = [`--samples ${settings.samples}`, `--select ${settings.select}`];
  if (settings.judgeModel !== null) parts.push(`--judge-model ${settings.judgeModel}`);
  if (settings.judgeInstructions !== null) parts.push('--judge-instructions (custom)');
  return parts.join(' ');
}
