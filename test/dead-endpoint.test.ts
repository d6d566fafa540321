/**
 * A dead or wrong endpoint is said so, fast: nothing listening at the address, or a plain web
 * server where the API should be. The library rejects every waiting call with ENDPOINT_DOWN and
 * the cause; `volley run` stops with exit 3 and the cause on stderr, every line left pending, and
 * `--resume` against a working server then completes every line exactly once.
 */

import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolley, ErrorCode } from 'volley';
import { freePort, parseJsonl, runCli, tempDir, writeBatch } from './helpers.js';

/** A web server that is not an API: an HTML 501 to every POST, as a plain static server answers. */
async function startWebServer(): Promise<{ server: Server; url: string; posts: () => number }> {
  let posts = 0;
  const server = createServer((request, response) => {
    if (request.method === 'POST') posts++;
    request.resume();
    response.writeHead(501, { 'content-type': 'text/html' });
    response.end('<!DOCTYPE html><html><body><h1>Unsupported method (POST)</h1></body></html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/v1`, posts: () => posts };
}

describe('a dead or wrong endpoint', () => {
  let web: Awaited<ReturnType<typeof startWebServer>>;
  let deadUrl: string;

  beforeAll(async () => {
    web = await startWebServer();
    deadUrl = `http://127.0.0.1:${await freePort()}/v1`;
  });
  afterAll(() => new Promise((resolve) => web.server.close(resolve)));

  describe.each(['async', 'threads'] as const)('library, %s mode', (mode) => {
    it('rejects concurrent calls to a refusing port with ENDPOINT_DOWN and the cause, within seconds', async () => {
      const volley = await createVolley({
        mode,
        endpoints: [{ baseUrl: deadUrl }],
        model: 'any',
        logger: false,
      });
      const started = performance.now();
      const settled = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) =>
          volley.chat({ messages: [{ role: 'user', content: `${i}` }] }),
        ),
      );
      const elapsedMs = performance.now() - started;
      for (const result of settled) {
        expect(result.status).toBe('rejected');
        const error = (result as PromiseRejectedResult).reason;
        expect(error).toMatchObject({ code: ErrorCode.ENDPOINT_DOWN, transient: true });
        expect(error.message).toBe(
          `connection refused (connect ECONNREFUSED ${deadUrl.slice(7, -3)}) at ${deadUrl}`,
        );
        expect(error.cause).toMatchObject({ code: ErrorCode.CONNECT, sent: false });
      }
      // The whole per-call budget is 10 minutes; being told takes seconds (three rounds of probes).
      expect(elapsedMs).toBeLessThan(30_000);
      expect(volley.stats().byEndpoint[0]).toMatchObject({ down: true });
      // A call made while the endpoint is down fails at once.
      const later = performance.now();
      await expect(
        volley.chat({ messages: [{ role: 'user', content: 'x' }] }),
      ).rejects.toMatchObject({
        code: ErrorCode.ENDPOINT_DOWN,
      });
      expect(performance.now() - later).toBeLessThan(1_000);
      await volley.close();
    });
  });

  it('names a web server that is not an OpenAI-compatible API by what it answered', async () => {
    const volley = await createVolley({
      endpoints: [{ baseUrl: web.url }],
      model: 'any',
      logger: false,
    });
    const error = await volley
      .chat({ messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(error).toMatchObject({ code: ErrorCode.ENDPOINT_DOWN });
    expect(error.message).toBe(
      `${web.url} answered 501 text/html: not an OpenAI-compatible endpoint? (check the base URL; it usually ends in /v1)`,
    );
    expect(error.cause).toMatchObject({
      code: ErrorCode.HTTP,
      status: 501,
      notApi: '501 text/html',
    });
    await volley.close();
  });

  it('uses a down endpoint again once it answers (the circuit probes it)', async () => {
    const port = await freePort();
    const volley = await createVolley({
      endpoints: [{ baseUrl: `http://127.0.0.1:${port}/v1` }],
      model: 'volley-sim-1',
      logger: false,
      circuitBreaker: { openMs: 100, maxOpenMs: 200 },
      backoff: { baseDelayMs: 10, maxDelayMs: 20 },
    });
    await expect(volley.chat({ messages: [{ role: 'user', content: 'a' }] })).rejects.toMatchObject(
      {
        code: ErrorCode.ENDPOINT_DOWN,
      },
    );
    const sim = await createSimulator({ port });
    try {
      // Past the circuit's pause, the next call is the probe, and it gets through.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const answer = await volley.chat({ messages: [{ role: 'user', content: 'b' }] });
      expect(answer.choices[0]?.message.content).toBeTypeOf('string');
      expect(volley.stats().byEndpoint[0]).toMatchObject({ down: false });
    } finally {
      await volley.close();
      await sim.close();
    }
  });

  describe('volley run', () => {
    let sim: Simulator;
    beforeAll(async () => {
      sim = await createSimulator();
    });
    afterAll(() => sim.close());

    it.each([
      [
        'a port with nothing listening',
        () => deadUrl,
        () => `connection refused (connect ECONNREFUSED`,
      ],
      [
        'a plain web server',
        () => web.url,
        () => `${web.url} answered 501 text/html: not an OpenAI-compatible endpoint?`,
      ],
    ])(
      'stops within 30 s with exit 3 against %s, the cause on stderr, every line pending; --resume completes each line once',
      async (_, url, cause) => {
        await using dir = await tempDir();
        // D4 of the adversarial trial: 500 lines at --timeout-ms 60000 took 242 s and exit 1.
        const count = 500;
        const input = dir.file('in.jsonl');
        const output = dir.file('out.jsonl');
        await writeBatch(input, count);
        const started = performance.now();
        const dead = await runCli([
          'run',
          input,
          '-o',
          output,
          '--base-url',
          url(),
          '--timeout-ms',
          '60000',
          '--progress',
          'none',
        ]);
        expect(performance.now() - started).toBeLessThan(30_000);
        expect(dead.code).toBe(3);
        expect(dead.stderr).toContain(`stopped: ${cause()}`);
        expect(dead.stderr).toContain(`${count} lines pending (--resume continues)`);
        expect(await readFile(output, 'utf8')).toBe('');

        const resumed = await runCli([
          'run',
          input,
          '-o',
          output,
          '--base-url',
          sim.url,
          '--resume',
          '--progress',
          'none',
          '--json',
        ]);
        expect(resumed.code).toBe(0);
        const lines = parseJsonl(await readFile(output, 'utf8'));
        const ids = lines.map((line) => line.custom_id);
        expect(new Set(ids).size).toBe(count);
        expect(ids).toHaveLength(count);
      },
    );
  });
});
