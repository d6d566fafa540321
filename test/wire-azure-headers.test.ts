/**
 * Azure OpenAI and per-endpoint headers, through the library against a real gateway (port 0)
 * that checks what arrives: the base URL's `?api-version=` query on every request, the key as
 * `api-key` rather than a bearer token, deployment paths, extra headers, and keys never repeated
 * in errors.
 */
import type { Simulator } from '@volley/sim';
import { createSimulator, simulatedChatContent } from '@volley/sim';
import { authFor } from '@volley/workers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolley, isVolleyError } from 'volley';
import type { Gateway } from './gateway.js';
import { startGateway } from './gateway.js';
import { chatBody } from './helpers.js';

const API_VERSION = '2024-10-21';
const AZURE_KEY = 'azure-key-0123456789abcdef';
const DEPLOYMENT = '/openai/deployments/gpt-4o-mini';

describe('Azure OpenAI endpoints', () => {
  let sim: Simulator;
  let azure: Gateway;

  beforeAll(async () => {
    sim = await createSimulator();
    azure = await startGateway(sim.url, DEPLOYMENT, ({ target, headers }) => {
      const query = new URL(target, 'http://x').searchParams;
      if (query.get('api-version') !== API_VERSION) return `api-version missing from ${target}`;
      if (headers.authorization !== undefined) return 'a bearer token was sent';
      if (headers['api-key'] !== AZURE_KEY) return 'wrong api-key';
      return undefined;
    });
  });
  afterAll(async () => {
    await azure.close();
    await sim.close();
  });

  it('keeps the api-version query, sends the key as api-key and joins the deployment path, for every call kind', async () => {
    const volley = await createVolley({
      endpoints: [
        { baseUrl: `${azure.url}?api-version=${API_VERSION}`, apiKey: AZURE_KEY, auth: 'api-key' },
      ],
      model: 'volley-sim-1',
      maxRetries: 0,
      logger: false,
    });
    try {
      const body = chatBody(7);
      const chat = await volley.chat(body as never);
      expect(chat.choices[0]?.message.content).toBe(simulatedChatContent(body).content);
      const streamed = await volley.chat(body as never, { onDelta: () => undefined });
      expect(streamed.choices[0]?.message.content).toBe(simulatedChatContent(body).content);
      const response = await volley.request({
        path: '/v1/responses',
        body: { input: 'Azure has the Responses API too' },
      });
      expect(response.status).toBe(200);
      const embedded = await volley.embed(['one', 'two']);
      expect(embedded.errors).toEqual([]);
      expect(embedded.matrix.count).toBe(2);
    } finally {
      await volley.close();
    }
    const targets = azure.seen.map((seen) => seen.target);
    expect(targets).toEqual([
      `${DEPLOYMENT}/chat/completions?api-version=${API_VERSION}`,
      `${DEPLOYMENT}/chat/completions?api-version=${API_VERSION}`,
      `${DEPLOYMENT}/responses?api-version=${API_VERSION}`,
      `${DEPLOYMENT}/embeddings?api-version=${API_VERSION}`,
    ]);
  });

  it('a refused key is an auth error that never repeats the key, even when the server echoes it', async () => {
    const wrongKey = 'wrong-azure-key-fedcba9876543210';
    const volley = await createVolley({
      endpoints: [
        { baseUrl: `${azure.url}?api-version=${API_VERSION}`, apiKey: wrongKey, auth: 'api-key' },
      ],
      model: 'volley-sim-1',
      maxRetries: 0,
      logger: false,
    });
    try {
      const error = await volley.chat(chatBody(1) as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isVolleyError(error)).toBe(true);
      const text = `${String((error as Error).message)} ${JSON.stringify(error)}`;
      expect(text).toContain('wrong api-key');
      expect(text).not.toContain(wrongKey);
    } finally {
      await volley.close();
    }
  });

  it('takes Azure hosts for api-key auth, everything else for bearer, unless told', () => {
    const at = (baseUrl: string, auth?: 'bearer' | 'api-key') =>
      authFor(auth === undefined ? { baseUrl } : { baseUrl, auth });
    expect(at('https://my-res.openai.azure.com/openai/deployments/gpt-4o?api-version=1')).toBe(
      'api-key',
    );
    expect(at('https://my-res.cognitiveservices.azure.com/openai/v1')).toBe('api-key');
    expect(at('https://api.openai.com/v1')).toBe('bearer');
    expect(at('https://openai.azure.com.evil.example/v1')).toBe('bearer');
    expect(at('https://my-res.openai.azure.com/openai/v1', 'bearer')).toBe('bearer');
    expect(at('http://127.0.0.1:8000/v1', 'api-key')).toBe('api-key');
  });
});

describe('per-endpoint headers', () => {
  let sim: Simulator;
  let gateway: Gateway;

  beforeAll(async () => {
    sim = await createSimulator();
    gateway = await startGateway(sim.url, '/v1', ({ headers }) =>
      headers['x-team'] === 'blue' ? undefined : 'x-team header missing',
    );
  });
  afterAll(async () => {
    await gateway.close();
    await sim.close();
  });

  it('sends an endpoint’s headers to it alone; a header named like Volley’s own replaces it', async () => {
    const volley = await createVolley({
      endpoints: [
        {
          baseUrl: gateway.url,
          apiKey: 'bearer-key-0123456789',
          headers: {
            'X-Team': 'blue',
            'User-Agent': 'my-app/2',
            Authorization: 'Bearer gateway-token-42424242',
          },
        },
      ],
      model: 'volley-sim-1',
      maxRetries: 0,
      logger: false,
    });
    try {
      await volley.chat(chatBody(3) as never);
    } finally {
      await volley.close();
    }
    const [seen] = gateway.seen;
    expect(seen?.headers['x-team']).toBe('blue');
    expect(seen?.headers['user-agent']).toBe('my-app/2');
    // One Authorization, the caller's: never two values for one header.
    expect(seen?.headers.authorization).toBe('Bearer gateway-token-42424242');
  });

  it.each(['async', 'threads'] as const)(
    'a credential given as a header is scrubbed from errors like a key (%s mode)',
    async (mode) => {
      const token = `gateway-token-${mode}-0123456789`;
      const volley = await createVolley({
        mode,
        threads: 1,
        // No X-Team: the gateway refuses, echoing the Authorization header it got.
        endpoints: [{ baseUrl: gateway.url, headers: { Authorization: `Bearer ${token}` } }],
        model: 'volley-sim-1',
        maxRetries: 0,
        logger: false,
      });
      try {
        const error = await volley.chat(chatBody(4) as never).then(
          () => undefined,
          (e: unknown) => e,
        );
        const text = `${String((error as Error).message)} ${JSON.stringify(error)}`;
        expect(text).toContain('x-team header missing');
        expect(text).not.toContain(token);
      } finally {
        await volley.close();
      }
    },
  );

  it('refuses a header value that would split the request, without showing the value', async () => {
    const error = await createVolley({
      endpoints: [{ baseUrl: gateway.url, headers: { 'X-Key': 'secret-value\r\nX-Evil: 1' } }],
    }).then(
      async (volley) => {
        await volley.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(isVolleyError(error)).toBe(true);
    expect((error as Error).message).toContain('X-Key');
    expect((error as Error).message).not.toContain('secret-value');
  });
});
