/**
 * The runtime's log (pino JSON lines): every line about an endpoint names it by origin and path
 * with its model, never by index; a key never appears; decisions at info (limit learned, circuit
 * opened) and warn (endpoint stopped), per-call details (retries) only at debug. The CLI's
 * `--log-level` sets the level.
 */
import { Writable } from 'node:stream';
import { createLogger } from '@volley/core';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolley } from 'volley';
import { runCli, tempDir, writeBatch } from './helpers.js';

const CANARY_KEY = 'sk-canary-logs-0123456789abcdefghij';

interface LogLine {
  level: number;
  msg: string;
  endpoint?: unknown;
  model?: unknown;
}

/** A pino destination that keeps every line. */
function capture(): { stream: Writable; text: () => string; lines: () => LogLine[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  return {
    stream,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as LogLine),
  };
}

/** `scheme://host:port/path` of a simulator, as log lines name it. */
function originOf(sim: Simulator): string {
  const url = new URL(sim.url);
  return `${url.protocol}//${url.hostname}:${url.port}${url.pathname.replace(/\/+$/, '')}`;
}

const INFO = 30;
const WARN = 40;
const DEBUG = 20;

describe('log lines', () => {
  let limited: Simulator;
  let failing: Simulator;
  let locked: Simulator;

  beforeAll(async () => {
    // Announces its limits in x-ratelimit-* headers: the runtime learns them.
    limited = await createSimulator({ limits: { rpm: 600_000 } });
    // Answers 500 to every other request: retried, and its circuit opens.
    failing = await createSimulator({ faultFor: () => 'status-500' });
    // Refuses the key: the endpoint is stopped.
    locked = await createSimulator({ faultFor: () => 'status-401' });
  });

  afterAll(async () => {
    await Promise.all([limited.close(), failing.close(), locked.close()]);
  });

  async function runAt(level: 'debug' | 'info'): Promise<ReturnType<typeof capture>> {
    const out = capture();
    const volley = await createVolley({
      mode: 'async',
      endpoints: [limited, failing, locked].map((sim) => ({
        baseUrl: sim.url,
        apiKey: CANARY_KEY,
      })),
      model: 'volley-sim-1',
      logger: createLogger({ level, destination: out.stream }),
      backoff: { baseDelayMs: 1, maxDelayMs: 5 },
      circuitBreaker: { failureThreshold: 2, openMs: 60_000 },
      concurrency: 4,
    });
    await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        volley.chat({ messages: [{ role: 'user', content: `line ${i}` }] }),
      ),
    );
    await volley.close();
    return out;
  }

  it('name endpoints by origin and model, never by index or with a key, at the documented levels', async () => {
    const out = await runAt('debug');
    const lines = out.lines();
    expect(out.text()).not.toContain(CANARY_KEY);
    const names = new Set([limited, failing, locked].map(originOf));
    const about = lines.filter((line) => 'endpoint' in line);
    expect(about.length).toBeGreaterThan(0);
    for (const line of about) {
      expect(names.has(line.endpoint as string), JSON.stringify(line)).toBe(true);
      expect(line.model).toBe('volley-sim-1');
    }

    const find = (level: number, pattern: RegExp, sim: Simulator): LogLine | undefined =>
      lines.find(
        (line) => line.level === level && pattern.test(line.msg) && line.endpoint === originOf(sim),
      );
    expect(find(INFO, /^limit learned from headers: 600000 requests\/min/, limited)).toBeDefined();
    expect(find(INFO, /^circuit opened after 2 failures/, failing)).toBeDefined();
    expect(find(WARN, /^endpoint stopped: /, locked)).toBeDefined();
    expect(find(DEBUG, /^retrying$/, failing)).toBeDefined();
  });

  it("name a call's own model when its request names one", async () => {
    const out = capture();
    const volley = await createVolley({
      mode: 'async',
      endpoints: [{ baseUrl: failing.url, apiKey: CANARY_KEY }],
      model: 'volley-sim-1',
      logger: createLogger({ level: 'debug', destination: out.stream }),
      backoff: { baseDelayMs: 1, maxDelayMs: 5 },
      maxRetries: 1,
    });
    await volley
      .chat({ model: 'volley-sim-2', messages: [{ role: 'user', content: 'x' }] })
      .catch(() => undefined);
    await volley.close();
    const retrying = out.lines().find((line) => line.msg === 'retrying');
    expect(retrying).toMatchObject({ endpoint: originOf(failing), model: 'volley-sim-2' });
  });

  it('keep per-call details out of the info level', async () => {
    const lines = (await runAt('info')).lines();
    expect(lines.some((line) => /^circuit opened/.test(line.msg))).toBe(true);
    expect(lines.filter((line) => line.level < INFO)).toEqual([]);
  });
});

describe('volley --log-level', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator({ limits: { rpm: 600_000 } });
  });
  afterAll(() => sim.close());

  it('is documented in --help', async () => {
    const result = await runCli(['run', '--help']);
    expect(result.stdout).toMatch(/--log-level <level>/);
    expect(result.stdout).toMatch(/VOLLEY_LOG_LEVEL/);
  });

  it('sets the level of the JSON lines on stderr, and wins over VOLLEY_LOG_LEVEL', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 20);
    const args = ['run', dir.file('in.jsonl'), '-o', dir.file('out.jsonl'), '--base-url', sim.url];
    const env = { OPENAI_API_KEY: CANARY_KEY, VOLLEY_LOG_LEVEL: 'error' };
    const result = await runCli([...args, '--progress', 'none', '--log-level', 'info'], env);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain(CANARY_KEY);
    const lines = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: INFO,
        endpoint: originOf(sim),
        msg: expect.stringMatching(/^limit learned from headers/),
      }),
    );

    const quiet = await runCli([...args, '--overwrite', '--progress', 'none'], env);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toMatch(/limit learned/);

    // A resume says at info what it found.
    await writeBatch(dir.file('in.jsonl'), 30);
    const resumed = await runCli(
      [...args, '--resume', '--progress', 'none', '--log-level', 'info'],
      env,
    );
    expect(resumed.code).toBe(0);
    const resumeLine = resumed.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine & { alreadyDone?: number; toSend?: number })
      .find((line) => line.msg.startsWith('resuming run'));
    expect(resumeLine).toMatchObject({ level: INFO, alreadyDone: 20, toSend: 10 });
  });
});
