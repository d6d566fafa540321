/**
 * More of the wire through the real CLI in a child process: a batch mixing chat completions,
 * Responses API and embeddings lines (with faults) runs to one record per line whose bodies the
 * openai SDK's types read; `--base-url`/`--api-key-env` pairs and `--header` arrive where they
 * should at real gateways on port 0; keys never show in output or messages.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import {
  createSimulator,
  simulatedChatContent,
  simulatedEmbedding,
  simulatedResponseText,
} from '@volley/sim';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import type { CreateEmbeddingResponse } from 'openai/resources/embeddings';
import type {
  ResponseOutputMessage,
  ResponseOutputText,
  Response as SdkResponse,
} from 'openai/resources/responses/responses';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from './gateway.js';
import { startGateway } from './gateway.js';
import { chatBody, parseJsonl, runCli, tempDir } from './helpers.js';

interface Line {
  custom_id: string;
  method: 'POST';
  url: '/v1/chat/completions' | '/v1/responses' | '/v1/embeddings';
  body: Record<string, unknown>;
}

interface OutputRecord {
  custom_id: string;
  response: { status_code: number; body: unknown } | null;
  error: unknown;
}

/** Line i: chat, Responses API or embeddings, in turn. */
function mixedLine(i: number): Line {
  const custom_id = `mixed-${i}`;
  switch (i % 3) {
    case 0:
      return { custom_id, method: 'POST', url: '/v1/chat/completions', body: chatBody(i) };
    case 1:
      return {
        custom_id,
        method: 'POST',
        url: '/v1/responses',
        body: {
          model: 'volley-sim-1',
          input: `Response number ${i}, please.`,
          max_output_tokens: 30,
        },
      };
    default:
      return {
        custom_id,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'volley-sim-embed-1', input: `embed text ${i}`, dimensions: 8 },
      };
  }
}

/** The keys a type requires (not optional). */
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];

/**
 * Every key the openai SDK's types require, listed as objects tsc checks against the SDK: a key
 * the SDK adds or drops fails compilation, and the runtime check below fails a body without one.
 * `output_text` is left out: the SDK computes it on the client, it is not on the wire.
 */
const REQUIRED = {
  chat: { id: true, object: true, created: true, model: true, choices: true } satisfies Record<
    RequiredKeys<ChatCompletion>,
    true
  >,
  response: {
    id: true,
    object: true,
    created_at: true,
    error: true,
    incomplete_details: true,
    instructions: true,
    metadata: true,
    model: true,
    output: true,
    parallel_tool_calls: true,
    temperature: true,
    tool_choice: true,
    tools: true,
    top_p: true,
  } satisfies Record<Exclude<RequiredKeys<SdkResponse>, 'output_text'>, true>,
  message: { id: true, type: true, role: true, status: true, content: true } satisfies Record<
    RequiredKeys<ResponseOutputMessage>,
    true
  >,
  outputText: { type: true, text: true, annotations: true } satisfies Record<
    RequiredKeys<ResponseOutputText>,
    true
  >,
  embeddings: { object: true, data: true, model: true, usage: true } satisfies Record<
    RequiredKeys<CreateEmbeddingResponse>,
    true
  >,
};

function expectKeys(value: unknown, keys: Record<string, true>): void {
  expect(typeof value).toBe('object');
  for (const key of Object.keys(keys)) expect(value, key).toHaveProperty(key);
}

/** Checks one record's body against the SDK type of its line's endpoint and the simulator's answer. */
function expectAnswer(line: Line, body: unknown): void {
  if (line.url === '/v1/chat/completions') {
    expectKeys(body, REQUIRED.chat);
    const chat = body as ChatCompletion;
    expect(chat.object).toBe('chat.completion');
    expect(chat.choices[0]?.message.content).toBe(simulatedChatContent(line.body).content);
  } else if (line.url === '/v1/responses') {
    expectKeys(body, REQUIRED.response);
    const response = body as SdkResponse;
    expect(response.object).toBe('response');
    const [item] = response.output;
    expectKeys(item, REQUIRED.message);
    expectKeys((item as ResponseOutputMessage).content[0], REQUIRED.outputText);
    const text =
      item?.type === 'message' && item.content[0]?.type === 'output_text'
        ? item.content[0].text
        : undefined;
    expect(text).toBe(simulatedResponseText(line.body).content);
    expect(response.usage?.output_tokens).toBe(simulatedResponseText(line.body).completionTokens);
  } else {
    expectKeys(body, REQUIRED.embeddings);
    const embeddings = body as CreateEmbeddingResponse;
    expect(embeddings.object).toBe('list');
    const vector = embeddings.data[0]?.embedding ?? [];
    const expected = simulatedEmbedding(line.body.input as string, 'volley-sim-embed-1', 8);
    expect(vector.length).toBe(8);
    for (let k = 0; k < vector.length; k++)
      expect(vector[k]).toBeCloseTo(expected[k] ?? Number.NaN, 6);
  }
}

describe('volley run on a batch mixing chat, responses and embeddings', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator({
      seed: 14,
      // Faults retried under --max-retries only: a connection reset mid-body is ambiguous and has
      // a budget of 2, which 300 lines at this rate exhaust now and then (the fault suite covers it).
      faults: { rate: 0.2, kinds: { 'truncate-stream': 1, 'status-500': 1 } },
    });
  });
  afterAll(() => sim.close());

  it('writes exactly one record per line, each the answer of its endpoint, through faults', async () => {
    await using dir = await tempDir();
    const lines = Array.from({ length: 300 }, (_, i) => mixedLine(i));
    await writeFile(dir.file('in.jsonl'), `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--max-retries',
      '10',
      '--progress',
      'none',
      '--json',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ succeeded: 300, failed: 0 });
    const records = parseJsonl(
      await readFile(dir.file('out.jsonl'), 'utf8'),
    ) as unknown as OutputRecord[];
    expect(records).toHaveLength(300);
    expect(new Set(records.map((r) => r.custom_id)).size).toBe(300);
    const byId = new Map(lines.map((line) => [line.custom_id, line]));
    for (const record of records) {
      expect(record.error).toBeNull();
      expect(record.response?.status_code).toBe(200);
      expectAnswer(byId.get(record.custom_id) as Line, record.response?.body);
    }
    // The faults happened, on every kind of line.
    const faulted = sim.requests.filter((entry) => entry.fault !== undefined);
    expect(new Set(faulted.map((entry) => entry.path))).toEqual(
      new Set(['/v1/chat/completions', '/v1/responses', '/v1/embeddings']),
    );
  });

  it('refuses a /v1/responses line without input, naming its code', async () => {
    await using dir = await tempDir();
    const bad = {
      custom_id: 'r',
      method: 'POST',
      url: '/v1/responses',
      body: { model: 'volley-sim-1' },
    };
    await writeFile(dir.file('in.jsonl'), `${JSON.stringify(bad)}\n`);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '--dry-run',
      '--progress',
      'none',
      '--json',
    ]);
    expect(`${result.stdout}${result.stderr}`).toContain('VOLLEY_INPUT_RESPONSE_INPUT_INVALID');
  });
});

describe('--base-url/--api-key-env pairs and --header', () => {
  const KEY_A = 'key-for-a-0123456789abcdef';
  const KEY_B = 'key-for-b-fedcba9876543210';
  let sim: Simulator;
  let a: Gateway;
  let b: Gateway;

  beforeAll(async () => {
    sim = await createSimulator();
    const expecting = (key: string) => (seen: { headers: Record<string, unknown> }) =>
      seen.headers.authorization !== `Bearer ${key}`
        ? 'wrong key'
        : seen.headers['x-team'] !== 'blue' || seen.headers['openai-organization'] !== 'org-7'
          ? 'headers missing'
          : undefined;
    a = await startGateway(sim.url, '/v1', expecting(KEY_A));
    b = await startGateway(sim.url, '/v1', expecting(KEY_B));
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await sim.close();
  });

  const endpointFlags = (): string[] => [
    '--base-url',
    a.url,
    '--api-key-env',
    'KEY_A',
    '--base-url',
    b.url,
    '--api-key-env',
    'KEY_B',
    '--header',
    'X-Team: blue',
    '--header',
    'OpenAI-Organization: org-7',
  ];

  it('volley run sends each endpoint its own key and every --header, and never prints a key', async () => {
    await using dir = await tempDir();
    const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify(mixedLine(i * 3 + 1)));
    await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
    const result = await runCli(
      [
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        ...endpointFlags(),
        '--progress',
        'plain',
        '--json',
      ],
      { KEY_A, KEY_B },
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ succeeded: 60, failed: 0 });
    expect(a.seen.length).toBeGreaterThan(0);
    expect(b.seen.length).toBeGreaterThan(0);
    const output = await readFile(dir.file('out.jsonl'), 'utf8');
    for (const text of [result.stdout, result.stderr, output]) {
      expect(text).not.toContain(KEY_A);
      expect(text).not.toContain(KEY_B);
    }
  });

  it('volley embed takes the same flags', async () => {
    await using dir = await tempDir();
    const texts = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({ id: `d${i}`, text: `text ${i}` }),
    );
    await writeFile(dir.file('in.jsonl'), `${texts.join('\n')}\n`);
    const before = a.seen.length + b.seen.length;
    const result = await runCli(
      [
        'embed',
        dir.file('in.jsonl'),
        '-o',
        dir.file('vectors.jsonl'),
        '--model',
        'volley-sim-embed-1',
        ...endpointFlags(),
        '--progress',
        'none',
        '--json',
      ],
      { KEY_A, KEY_B },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(a.seen.length + b.seen.length).toBeGreaterThan(before);
  });

  it('a wrong key fails the lines with the server’s message but not the key; bad flags are usage errors', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('in.jsonl'), `${JSON.stringify(mixedLine(0))}\n`);
    const wrong = await runCli(
      [
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        '--base-url',
        a.url,
        '--api-key-env',
        'KEY_B',
        '--header',
        'X-Team: blue',
        '--max-retries',
        '0',
        '--progress',
        'plain',
      ],
      { KEY_B },
    );
    expect(wrong.code).not.toBe(0);
    const errors = await readFile(dir.file('out.errors.jsonl'), 'utf8').catch(() => '');
    const shown = `${wrong.stdout}${wrong.stderr}${errors}`;
    expect(shown).toContain('wrong key');
    expect(shown).not.toContain(KEY_B);

    const tooMany = await runCli(
      [
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('o2.jsonl'),
        '--base-url',
        a.url,
        '--api-key-env',
        'KEY_A',
        '--api-key-env',
        'KEY_B',
      ],
      { KEY_A, KEY_B },
    );
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toContain('--api-key-env');

    const unset = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('o3.jsonl'),
      '--base-url',
      a.url,
      '--api-key-env',
      'NOT_SET_ANYWHERE',
    ]);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('NOT_SET_ANYWHERE');

    const malformed = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('o4.jsonl'),
      '--base-url',
      a.url,
      '--header',
      `Authorization Bearer ${KEY_A}`,
    ]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("'Name: value'");
    expect(malformed.stderr).not.toContain(KEY_A);
  });
});

describe('volley run against an Azure OpenAI deployment URL', () => {
  const KEY = 'azure-cli-key-0123456789abcdef';
  let sim: Simulator;
  let azure: Gateway;

  beforeAll(async () => {
    sim = await createSimulator();
    azure = await startGateway(sim.url, '/openai/deployments/gpt-4o-mini', ({ target, headers }) =>
      new URL(target, 'http://x').searchParams.get('api-version') !== '2024-10-21'
        ? 'api-version missing'
        : headers['api-key'] !== KEY || headers.authorization !== undefined
          ? 'wrong credentials'
          : undefined,
    );
  });
  afterAll(async () => {
    await azure.close();
    await sim.close();
  });

  it('keeps the api-version query and sends the key as api-key with --auth api-key', async () => {
    await using dir = await tempDir();
    const lines = [0, 1, 2].map((i) => JSON.stringify(mixedLine(i)));
    await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
    const result = await runCli(
      [
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        '--base-url',
        `${azure.url}?api-version=2024-10-21`,
        '--api-key-env',
        'AZURE_OPENAI_API_KEY',
        '--auth',
        'api-key',
        '--progress',
        'none',
        '--json',
      ],
      { AZURE_OPENAI_API_KEY: KEY },
    );
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toMatchObject({ succeeded: 3, failed: 0 });
    expect(azure.seen.map((seen) => seen.target).sort()).toEqual([
      '/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21',
      '/openai/deployments/gpt-4o-mini/embeddings?api-version=2024-10-21',
      '/openai/deployments/gpt-4o-mini/responses?api-version=2024-10-21',
    ]);
  });
});
