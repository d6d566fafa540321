/**
 * The state file beside the results (`<output>.volley-state.json`): what a run is, so that
 * `--resume` can tell whether it is continuing the same thing.
 *
 * Per-line state lives in the records themselves (their ids encode the request, see record.ts);
 * this file holds what is true of the whole run: its id, its configuration hash (endpoints, default
 * model, input rules, sampling; never an API key, which may rightly change between a stop and a
 * resume), the output paths, the order mode, the counts, and the byte lengths known to be
 * fsynced. It is replaced atomically (write a temporary file, fsync, rename, fsync the
 * directory), so a crash leaves either the old state or the new one, never half of either.
 */

import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { CliError, ExitCode } from '../exit-codes.js';
import { syncDirectory } from '../sync-directory.js';
import type { SamplingSettings } from './samples/settings.js';

/** Where a run stands. */
export type RunStatus =
  | 'running'
  | 'interrupted'
  | 'stopped'
  | 'write-failed'
  | 'finished'
  | 'finished-with-errors';

/** What decides the results: a resume with a different configuration would mix two runs. */
export interface RunConfig {
  /** Base URLs, or `['embedded-simulator']`. */
  endpoints: string[];
  /** `--model`, the default for lines that name none. */
  model: string | null;
  /** Lines above this are refused, so it decides which lines have results. */
  maxLineBytes: number;
  allowedModels: string[];
  maxPromptTokens: number | null;
  /** `--samples`/`--select`: what each record is made of. Null or absent: one request per line. */
  sampling?: SamplingSettings | null;
  /**
   * `text`: lines are prompts, read as `{"prompt": line}`. Absent for JSONL. Reading the same
   * file the other way turns every line into a different request (or a bad line).
   */
  inputFormat?: 'text';
}

/** The state file's content (version 1). */
export interface RunState {
  version: 1;
  tool: 'volley';
  /** The command that wrote it; absent means `run` (files written before `embed` existed). */
  command?: 'run' | 'embed';
  runId: string;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  order: 'completion' | 'input';
  config: {
    /** SHA-256 of the canonical {@link RunConfig}. */
    hash: string;
    /** The endpoints without credentials or query strings, for messages. */
    endpoints: string[];
    model: string | null;
    /** The sampling flags (`--samples 5 --select vote`), for messages; absent without them. */
    sampling?: string;
  };
  input: { path: string; size: number | null; mtimeMs: number | null };
  files: { results: string; errors: string; retry: string | null; spill: string };
  counts: { succeeded: number; failed: number; invalid: number; pending: number | null };
  /** Bytes of each file known to be on stable storage at the last checkpoint. */
  committed: { results: number; errors: number; retry: number; spill: number };
  /** `volley embed`: the output layout, and the vector length once known (raw files hold none). */
  vectors?: { format: 'jsonl' | 'npy' | 'f32'; dimensions: number | null; ids: string | null };
}

/** A fresh random run id (128 bits, hex). */
export function newRunId(): string {
  return randomBytes(16).toString('hex');
}

/** SHA-256 of a configuration, independent of endpoint order. */
export function configHash(config: RunConfig): string {
  const canonical = {
    endpoints: [...config.endpoints].map(stripCredentials).sort(),
    model: config.model,
    maxLineBytes: config.maxLineBytes,
    allowedModels: [...config.allowedModels].sort(),
    maxPromptTokens: config.maxPromptTokens,
    // Only when set: runs without sampling keep the hash earlier versions wrote, so they resume.
    ...(config.sampling == null ? {} : { sampling: config.sampling }),
    // Likewise only for text input: JSONL runs keep the hash they always had.
    ...(config.inputFormat === undefined ? {} : { inputFormat: config.inputFormat }),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** A URL for display and hashing: no user info (`user:key@`), which can hold a credential. */
function stripCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** A URL safe to write into a file: scheme, host, port and path only. */
export function displayEndpoint(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Reads a state file; undefined when there is none. A file that is not a Volley state file is a
 * usage error (`VOLLEY_ERR_RESUME_STATE_INVALID`), never silently replaced.
 */
export async function readRunState(path: string): Promise<RunState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new CliError(
      `cannot read the state file ${JSON.stringify(path)}: ${(error as Error).message}`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_STATE_INVALID',
    );
  }
  let state: Partial<RunState>;
  try {
    state = JSON.parse(text) as Partial<RunState>;
  } catch {
    state = {};
  }
  if (
    state.tool !== 'volley' ||
    state.version !== 1 ||
    typeof state.runId !== 'string' ||
    !/^[0-9a-f]{32}$/.test(state.runId) ||
    typeof state.config?.hash !== 'string'
  ) {
    throw new CliError(
      `${JSON.stringify(path)} is not a Volley state file (or was written by another version); remove it or start over with --overwrite`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_STATE_INVALID',
    );
  }
  return state as RunState;
}

/**
 * Replaces the state file atomically. A failure (disk full) leaves the previous state in place
 * and is thrown; the temporary file is removed.
 */
export async function writeRunState(path: string, state: RunState): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fsConstants;
  let done = false;
  try {
    const handle = await open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(state, null, 2)}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    done = true;
    await syncDirectory(path);
  } finally {
    if (!done) await unlink(tmp).catch(() => undefined);
  }
}
