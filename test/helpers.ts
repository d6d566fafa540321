/**
 * Shared helpers for the cross-package tests: real simulators on port 0, real temp files, the
 * real CLI in a child process.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(ROOT, 'packages/cli/bin/volley.js');

export interface TempDir {
  path: string;
  file(name: string): string;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function tempDir(): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), 'volley-test-'));
  return {
    path,
    file: (name) => join(path, name),
    [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }),
  };
}

/** A short chat request whose content differs per index, so every output is distinguishable. */
export function chatBody(
  index: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    model: 'volley-sim-1',
    messages: [{ role: 'user', content: `Tell me fact number ${index} about otters.` }],
    max_tokens: 24,
    ...extra,
  };
}

export function batchLine(index: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    custom_id: `req-${index}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: chatBody(index, extra),
  });
}

export async function writeBatch(path: string, count: number): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(batchLine(i));
  await writeFile(path, `${lines.join('\n')}\n`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI. The environment is minimal on purpose: no inherited OPENAI_* variables. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}

export function parseJsonl(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A loopback port that was free a moment ago: nothing listens on it (connections are refused). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
