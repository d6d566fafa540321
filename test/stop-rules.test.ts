/**
 * How a run stops early and ends promptly: the same permanent error on the first lines
 * (`--stop-after-same-error`), a signal with nothing on the wire, a reader closing stdout or
 * stderr (EPIPE), and the exit right after the summary. The real CLI in a child process against
 * a real HTTP server that keeps its connections alive.
 */
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countLines, startCli, waitFor } from './cli-process.js';
import { batchLine, CLI, parseJsonl, runCli, tempDir, writeBatch } from './helpers.js';

/** What the server answers: a vLLM that lacks the model, a busy one (503), or a working one. */
type Mode = 'missing-model' | 'busy' | 'ok';

interface TestServer {
  url: string;
  /** Requests answered so far. */
  count: number;
  mode: Mode;
  /** Milliseconds before each answer. */
  delayMs: number;
  /** Answers the request with this 0-based arrival index with 200 whatever the mode. */
  okAt: Set<number>;
  close(): Promise<void>;
}

const MISSING_MODEL = {
  error: { message: 'The model `nope` does not exist.', type: 'NotFoundError', code: 404 },
};

function answer(server: TestServer, req: IncomingMessage, res: ServerResponse): void {
  const index = server.count++;
  const headers = { 'content-type': 'application/json', connection: 'keep-alive' };
  if (server.mode === 'busy') {
    res.writeHead(503, { ...headers, 'retry-after': '30' }).end('{"error":{"message":"busy"}}');
    return;
  }
  if (server.mode === 'missing-model' && !server.okAt.has(index)) {
    res.writeHead(404, headers).end(JSON.stringify(MISSING_MODEL));
    return;
  }
  const body = req.url?.endsWith('/embeddings')
    ? {
        object: 'list',
        data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }],
        model: 'm',
        usage: { prompt_tokens: 1, total_tokens: 1 },
      }
    : {
        id: `chatcmpl-${index}`,
        object: 'chat.completion',
        created: 1,
        model: 'm',
        choices: [
          { index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' },
        ],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      };
  res.writeHead(200, headers).end(JSON.stringify(body));
}

async function startServer(): Promise<TestServer> {
  let http: Server | undefined;
  const server: TestServer = {
    url: '',
    count: 0,
    mode: 'ok',
    delayMs: 0,
    okAt: new Set(),
    close: () =>
      new Promise((resolve) => {
        http?.closeAllConnections();
        http?.close(() => resolve());
      }),
  };
  http = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (server.delayMs === 0) answer(server, req, res);
      else setTimeout(() => answer(server, req, res), server.delayMs);
    });
  });
  // Connections stay open long after the run: the CLI must not wait for them.
  http.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as { port: number };
  server.url = `http://127.0.0.1:${port}/v1`;
  return server;
}

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());
beforeEach(() => {
  server.count = 0;
  server.mode = 'ok';
  server.delayMs = 0;
  server.okAt = new Set();
});

function runArgs(input: string, output: string, ...extra: string[]): string[] {
  return ['run', input, '-o', output, '--base-url', server.url, '--progress', 'plain', ...extra];
}

interface Summary {
  exitCode: number;
  status: string;
  succeeded: number;
  failed: number;
  pending: number;
  alreadyDone: number;
  alreadyFailed: number;
}

async function customIds(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return parseJsonl(text).map((record) => String(record.custom_id));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('--stop-after-same-error', () => {
  it('stops a run whose first 20 answered lines all got the same 404, and resume sends the rest exactly once', async () => {
    await using dir = await tempDir();
    const count = 2000;
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    const errors = dir.file('out.errors.jsonl');
    await writeBatch(input, count);
    server.mode = 'missing-model';

    const first = await runCli(runArgs(input, output, '--json'));
    expect(first.code).toBe(3);
    const stopLine = first.stderr.split('\n').find((line) => line.startsWith('stopped: '));
    expect(stopLine).toMatch(
      /^stopped: the first 20 answered lines all failed with HTTP 404: The model `nope` does not exist; \d+ lines pending \(--resume continues\)$/,
    );
    const summary = JSON.parse(first.stdout) as Summary;
    expect(summary).toMatchObject({ exitCode: 3, status: 'stopped', succeeded: 0 });
    expect(summary.failed).toBeGreaterThanOrEqual(20);
    expect(summary.pending).toBe(count - summary.failed);
    // Far from the whole file: the threshold and what was in flight (concurrency 64) at most.
    expect(server.count).toBeLessThanOrEqual(20 + 64);
    // Answers that arrived after the stop aborted their calls leave those lines pending.
    expect(server.count).toBeGreaterThanOrEqual(summary.failed);
    expect(await countLines(errors)).toBe(summary.failed);
    expect(await countLines(output)).toBe(0);
    expect(await countLines(dir.file('out.retry.jsonl'))).toBe(summary.failed);

    // The server is fixed (the model is served now): --resume sends the pending lines. The lines
    // that failed for good keep their error records (--resume sends only transient failures).
    server.mode = 'ok';
    server.count = 0;
    const resumed = await runCli(runArgs(input, output, '--json', '--resume'));
    expect(resumed.code).toBe(1);
    expect(JSON.parse(resumed.stdout)).toMatchObject({
      status: 'finished-with-errors',
      succeeded: summary.pending,
      failed: 0,
      pending: 0,
      alreadyDone: summary.failed,
      alreadyFailed: summary.failed,
    });
    expect(server.count).toBe(summary.pending);
    const ids = [...(await customIds(output)), ...(await customIds(errors))];
    expect(ids).toHaveLength(count);
    expect(new Set(ids).size).toBe(count);
    // Their input lines wait in the retry file, ready to be sent as a run of their own.
    expect(await countLines(dir.file('out.retry.jsonl'))).toBe(summary.failed);
  }, 60_000);

  it('is disarmed by a success among the first lines answered', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 60);
    server.mode = 'missing-model';
    server.okAt = new Set([10]);
    const result = await runCli(runArgs(input, output, '--json', '--concurrency', '1'));
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ succeeded: 1, failed: 59, pending: 0 });
    expect(server.count).toBe(60);
  });

  it('is off with 0: every line is sent', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 300);
    server.mode = 'missing-model';
    const result = await runCli(runArgs(input, output, '--json', '--stop-after-same-error', '0'));
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ failed: 300, pending: 0 });
    expect(server.count).toBe(300);
  });

  it('stops volley embed the same way', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.txt');
    const output = dir.file('out.jsonl');
    const texts = Array.from({ length: 500 }, (_, i) => `text number ${i}`);
    await writeFile(input, `${texts.join('\n')}\n`);
    server.mode = 'missing-model';
    const result = await runCli([
      'embed',
      input,
      '-o',
      output,
      '--base-url',
      server.url,
      '-m',
      'nope',
      '--batch-size',
      '1',
      '--progress',
      'plain',
      '--stop-after-same-error',
      '5',
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /stopped: the first 5 answered lines all failed with HTTP 404: The model `nope` does not exist; \d+ lines pending/,
    );
    expect(server.count).toBeLessThan(200);
  });
});

describe('prompt endings', () => {
  describe.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s with nothing on the wire', (signal, exitCode) => {
    it(`ends the run at once (exit ${exitCode}), not after the grace period`, async () => {
      await using dir = await tempDir();
      const input = dir.file('in.jsonl');
      const output = dir.file('out.jsonl');
      await writeBatch(input, 10);
      // One request a minute: after the first, the next line waits on the rate limit, unsent.
      const cli = startCli(runArgs(input, output, '--json', '--rpm', '1'));
      await waitFor(async () => (await countLines(output)) >= 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(server.count).toBe(1);
      const sentAt = Date.now();
      cli.child.kill(signal);
      const result = await cli.exited;
      const tookMs = Date.now() - sentAt;
      expect(result.code).toBe(exitCode);
      expect(tookMs).toBeLessThan(1000);
      expect(JSON.parse(result.stdout)).toMatchObject({
        status: 'interrupted',
        succeeded: 1,
        pending: 9,
      });
      expect(await countLines(dir.file('out.errors.jsonl'))).toBe(0);
      console.info(`${signal} with nothing on the wire: exited ${tookMs} ms after the signal`);
    }, 60_000);
  });

  it('SIGTERM while every line waits out a retry delay (503, Retry-After: 30) ends at once', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 5);
    server.mode = 'busy';
    const cli = startCli(runArgs(input, output, '--json'));
    await waitFor(() => server.count >= 5);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const sentAt = Date.now();
    cli.child.kill('SIGTERM');
    const result = await cli.exited;
    const tookMs = Date.now() - sentAt;
    expect(result.code).toBe(143);
    expect(tookMs).toBeLessThan(1000);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'interrupted', pending: 5 });
    console.info(`SIGTERM with every line backing off: exited ${tookMs} ms after the signal`);
  }, 60_000);

  it('SIGINT while reading a standard input that stays open, nothing on the wire, ends at once', async () => {
    await using dir = await tempDir();
    const output = dir.file('out.jsonl');
    const child = spawn(process.execPath, [CLI, ...runArgs('-', output, '--json')], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.resume();
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // The writer keeps the pipe open: the run waits for more lines with nothing to send. (More
    // than the 64 KiB checked before the first request.)
    const lines = Array.from({ length: 1000 }, (_, i) => batchLine(i));
    child.stdin.write(`${lines.join('\n')}\n`);
    await waitFor(async () => (await countLines(output)) >= 1000);
    const sentAt = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    const tookMs = Date.now() - sentAt;
    child.stdin.destroy();
    expect(code).toBe(130);
    expect(tookMs).toBeLessThan(1000);
    expect(JSON.parse(stdout)).toMatchObject({ status: 'interrupted', succeeded: 1000 });
    console.info(`SIGINT with standard input open: exited ${tookMs} ms after the signal`);
  });

  it('SIGINT while standard input has sent too little to start (under 64 KiB) ends at once, nothing sent', async () => {
    await using dir = await tempDir();
    const output = dir.file('out.jsonl');
    const child = spawn(process.execPath, [CLI, ...runArgs('-', output)], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.stdin.write(`${batchLine(0)}\n`);
    // No output tells when the CLI has started: give it time to (node itself catches SIGINT, so
    // /proc's SigCgt cannot tell either).
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const sentAt = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    const tookMs = Date.now() - sentAt;
    child.stdin.destroy();
    expect(code).toBe(130);
    expect(tookMs).toBeLessThan(1000);
    expect(stderr).toContain('nothing was sent');
    expect(server.count).toBe(0);
    console.info(`SIGINT before the first request from standard input: exited ${tookMs} ms after`);
  });

  it('stops cleanly when the reader of stderr goes away (EPIPE): exit 3, lock removed, state saved, resumable', async () => {
    await using dir = await tempDir();
    const count = 3000;
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, count);
    server.delayMs = 20;
    const args = runArgs(input, output, '--concurrency', '8', '--progress-interval-ms', '50');
    const cli = startCli(args);
    await waitFor(() => cli.stderr().length > 0);
    // `volley run … 2>&1 | head -1`: the read end closes while the run writes progress.
    cli.child.stderr.destroy();
    const result = await cli.exited;
    expect(result.code).toBe(3);
    expect(await exists(`${output}.volley-lock`)).toBe(false);
    const state = JSON.parse(await readFile(`${output}.volley-state.json`, 'utf8')) as {
      status: string;
      counts: { succeeded: number };
    };
    expect(state.status).toBe('stopped');
    const written = await countLines(output);
    expect(written).toBe(state.counts.succeeded);
    expect(written).toBeLessThan(count);

    server.delayMs = 0;
    const resumed = await runCli(runArgs(input, output, '--json', '--resume'));
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).not.toContain('stale lock');
    expect(JSON.parse(resumed.stdout)).toMatchObject({
      succeeded: count - written,
      alreadyDone: written,
    });
    const ids = await customIds(output);
    expect(ids).toHaveLength(count);
    expect(new Set(ids).size).toBe(count);
  }, 60_000);

  it('stops cleanly when the reader of -o - goes away (EPIPE): exit 3', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    await writeBatch(input, 3000);
    server.delayMs = 20;
    const cli = startCli(['run', input, '-o', '-', '--base-url', server.url, '--concurrency', '8']);
    // `volley run … -o - | head -1`
    cli.child.stdout.once('data', () => cli.child.stdout.destroy());
    const result = await cli.exited;
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/stopped: stdout was closed by its reader; \d+ lines pending/);
    expect(result.stderr).not.toContain('Free space');
  }, 60_000);

  describe.each([
    ['a finished run', [] as string[], 'ok' as Mode, 0],
    ['a run stopped by the same 404', [] as string[], 'missing-model' as Mode, 3],
    ['a run in threads mode', ['--mode', 'threads'], 'ok' as Mode, 0],
  ])('%s against a server that keeps connections alive', (_name, extra, mode, exitCode) => {
    it('exits within 1 s of its summary', async () => {
      await using dir = await tempDir();
      const input = dir.file('in.jsonl');
      const output = dir.file('out.jsonl');
      await writeBatch(input, 500);
      server.mode = mode;
      const cli = startCli(runArgs(input, output, ...extra));
      let summaryAt = 0;
      cli.child.stderr.on('data', () => {
        if (summaryAt === 0 && cli.stderr().includes('by endpoint:')) summaryAt = Date.now();
      });
      const result = await cli.exited;
      const lingerMs = Date.now() - summaryAt;
      expect(result.code).toBe(exitCode);
      expect(summaryAt).toBeGreaterThan(0);
      expect(lingerMs).toBeLessThan(1000);
      console.info(`${_name}: exited ${lingerMs} ms after its summary`);
    });
  });
});
