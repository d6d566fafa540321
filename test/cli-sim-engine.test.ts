// `volley sim` with the engine model, as a benchmark or a user starts it: its own process, the
// OpenAI SDK as the client, hints read over HTTP.
import { simulatedChatContent } from '@volley/sim';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, startSimCli, waitFor } from './cli-process.js';
import { runCli } from './helpers.js';

async function stop(cli: CliProcess): Promise<void> {
  cli.child.kill('SIGTERM');
  expect((await cli.exited).code).toBe(0);
}

describe('volley sim --engine-slots', () => {
  let cli: CliProcess;
  let url: string;
  beforeAll(async () => {
    ({ cli, url } = await startSimCli([
      '--engine-slots',
      '4',
      '--decode-step-ms',
      '2',
      '--decode-step-ms-per-sequence',
      '0.5',
      '--prefill-ms-per-token',
      '0.1',
      '--max-waiting',
      '16',
      '--engine-jitter',
      '0.2',
      '--max-batched-tokens',
      '512',
      '--seed',
      '5',
    ]));
  });
  afterAll(() => stop(cli));

  it('says what the engine does and where its hints are', async () => {
    await waitFor(() => cli.stderr().includes('hints:'));
    const origin = url.slice(0, -'/v1'.length);
    expect(cli.stderr()).toContain(
      'engine: 4 slots, prefill 0.1 ms/token, decode step 2 ms + 0.5 ms per extra sequence, ' +
        '512 tokens per step, queue of 16 (then 503), jitter 0.2\n',
    );
    expect(cli.stderr()).toContain(`hints: ${origin}/metrics ${origin}/slots`);
  });

  it('serves the OpenAI SDK, which ignores the timing comment in streams', async () => {
    const client = new OpenAI({ baseURL: url, apiKey: 'test', maxRetries: 0 });
    const body = {
      model: 'volley-sim-1',
      messages: [{ role: 'user' as const, content: 'engine over the wire' }],
      max_tokens: 40,
    };
    const expected = simulatedChatContent({ ...body, ignore_eos: true }).content;
    let streamed = '';
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
      streamed += chunk.choices[0]?.delta.content ?? '';
    }
    expect(streamed).toBe(expected);

    const { data, response } = await client.chat.completions.create(body).withResponse();
    expect(data.choices[0]?.message.content).toBe(expected);
    const truth = JSON.parse(response.headers.get('x-volley-sim-timing') ?? 'null') as {
      outputTokens: number;
      tpotMs: number;
    };
    expect(truth.outputTokens).toBe(40);
    // 2 ms steps with jitter 0.2: never faster than 1.6 ms on average.
    expect(truth.tpotMs).toBeGreaterThanOrEqual(1.6 * 0.9);

    const origin = url.slice(0, -'/v1'.length);
    const metrics = await (await fetch(`${origin}/metrics`)).text();
    expect(metrics).toMatch(/^vllm:num_requests_running\{[^}]*\} 0\.0$/m);
    expect(metrics).toMatch(/^vllm:num_requests_waiting\{[^}]*\} 0\.0$/m);
    expect(await (await fetch(`${origin}/props`)).json()).toEqual({ total_slots: 4 });
  });
});

describe('volley sim flags', () => {
  it.each([
    [['--engine-slots', '0'], 'Invalid --engine-slots: expected an integer from 1'],
    [['--engine-slots', '8', '--max-waiting', '1.5'], 'Invalid --max-waiting: expected an integer'],
    [['--engine-slots', '8', '--engine-jitter', '3'], 'Invalid --engine-jitter: expected a number'],
    [
      ['--engine-slots', '64', '--max-batched-tokens', '32'],
      'Invalid --max-batched-tokens: expected an integer from 64',
    ],
    [['--decode-step-ms', '5'], '--decode-step-ms needs --engine-slots'],
    [['--engine-slots', 'many'], "option '--engine-slots <n>' argument 'many' is invalid"],
  ])('refuses %j as a usage error', async (args, message) => {
    const result = await runCli(['sim', '--port', '0', ...args]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
  });

  it('injects faults at --fault-rate', async () => {
    const { cli, url } = await startSimCli(['--fault-rate', '1', '--seed', '2']);
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () =>
          fetch(`${url}/models`)
            .then(async (res) => {
              await res.text();
              return res.status;
            })
            .catch(() => 0),
        ),
      );
      expect(outcomes.filter((status) => status === 200)).toEqual([]);
    } finally {
      await stop(cli);
    }
  });
});
