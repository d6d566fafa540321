/**
 * The CLI as a long-running child process the test controls: signals, kill -9, waiting for
 * records to appear. (helpers.ts's `runCli` only runs a command to its end.)
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { CliResult } from './helpers.js';
import { CLI } from './helpers.js';

/** A started CLI process. */
export interface CliProcess {
  child: ChildProcessWithoutNullStreams;
  /** Resolves when the process has exited and its streams are closed. */
  exited: Promise<CliResult>;
  /** What it has written to stderr so far. */
  stderr(): string;
}

/**
 * Starts the built CLI with a minimal environment (no inherited OPENAI_* variables); `stdin` is
 * written to its standard input, which is then closed.
 */
export function startCli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: Buffer | string } = {},
): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // A closed pipe, not a terminal: `-` then reads exactly what is given.
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.stdin);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exited, stderr: () => stderr };
}

/** Whole lines in a file (0 if it does not exist). */
export async function countLines(path: string): Promise<number> {
  try {
    const text = await readFile(path, 'utf8');
    let n = 0;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

/** Polls `condition` every 20 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Starts `volley sim --port 0 ...args` and resolves with it and its base URL (its first stdout line). */
export async function startSimCli(args: string[]): Promise<{ cli: CliProcess; url: string }> {
  const cli = startCli(['sim', '--port', '0', ...args]);
  const url = await new Promise<string>((resolve, reject) => {
    cli.child.stdout.once('data', (line: string) => resolve(line.trim()));
    cli.child.once('exit', (code) => reject(new Error(`volley sim exited with ${code}`)));
  });
  return { cli, url };
}
