/**
 * guardrail against a real simulator, in both modes. When the check flags the input, the main
 * call is aborted at the server before it finished, and its rate-limit reservation comes back;
 * when the check passes, the answer costs no time beyond the slower of the two calls.
 */
import { describe, expect, it } from 'vitest';
import type { ChatInput, GuardrailOptions } from 'volley';
import { ErrorCode, guardrail, isFlaggedAnswer } from 'volley';
import { codeOf, lastMessage, limiterIdle, MODES, parity, rig, waitFor, words } from './helpers.js';

const modes = parity();

const isCheck = (body: unknown): boolean => lastMessage(body).startsWith('Reply only YES or NO');

function requests(input: string, mainTokens: number): Pick<GuardrailOptions, 'request' | 'check'> {
  return {
    request: { messages: [{ role: 'user', content: input }], max_tokens: mainTokens },
    check: {
      messages: [{ role: 'user', content: `Reply only YES or NO: is this harmful?\n\n${input}` }],
      max_tokens: 30,
    },
  };
}

describe.each(MODES)('guardrail (%s mode)', (mode) => {
  it('a flag aborts the main call at the server and returns its reservation', async () => {
    // The main answer is 400 words at 20 tokens/s: 20 s if it were allowed to finish.
    await using r = await rig(
      mode,
      {
        latency: { tokensPerSecond: 20 },
        script: ({ body }) =>
          isCheck(body) ? 'YES' : words('Step one of the dangerous plan:', 400),
      },
      // A TPM limit makes every call reserve tokens; two slots make a leaked one visible.
      { endpoint: { tpm: 600_000, maxInFlight: 2 } },
    );
    const capacity = await waitFor(async () => {
      const [lane] = await r.volley.limiterStats();
      return lane !== undefined && lane.availableTokens >= 2499 && lane.availableTokens;
    });

    const started = Date.now();
    const result = await guardrail(r.volley, requests('How do I make a weapon?', 400));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(result.allowed).toBe(false);
    if (result.allowed) return;
    expect(result.refusal).toBe("I'm unable to help with that request.");
    expect(result.check).toMatchObject({ flagged: true, text: 'YES' });
    expect(result.mainAborted).toBe(true);
    expect(result.timing.mainMs).toBeUndefined();

    // The server saw the main request closed by the client long before its 20 s answer.
    const main = await waitFor(() => {
      const entry = r.log().find((e) => !isCheck(e.body));
      return entry?.finishedAt !== undefined && entry;
    });
    expect(main.aborted).toBe(true);
    expect((main.finishedAt ?? 0) - main.receivedAt).toBeLessThan(1000);
    expect(r.log().find((e) => isCheck(e.body))?.aborted).toBe(false);

    // The reservation was settled: no request in flight, and the token bucket refills to full.
    await limiterIdle(r.volley);
    await waitFor(async () => {
      const [lane] = await r.volley.limiterStats();
      return lane !== undefined && lane.availableTokens >= capacity;
    }, 2000);
    // Both slots are free: a new guarded call with a passing check gets through at once.
    r.sim.setOptions({ latency: {}, script: ({ body }) => (isCheck(body) ? 'NO' : 'Hello!') });
    const next = await guardrail(r.volley, requests('Say hello', 5));
    expect(next.allowed).toBe(true);
    modes.record(mode, 'flagged', [result.refusal, result.check.text, result.mainAborted]);
  });

  it('a pass returns the answer with no latency beyond the slower call', async () => {
    // Main: 20 words at 100 tokens/s (about 200 ms); check: one word (about 10 ms).
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 100 },
      script: ({ body }) => (isCheck(body) ? 'NO' : words('Otters hold hands', 17)),
    });
    const result = await guardrail(r.volley, requests('Tell me about otters', 100));
    expect(result.allowed).toBe(true);
    if (!result.allowed) return;
    expect(result.text).toBe(words('Otters hold hands', 17));
    expect(result.check).toMatchObject({ flagged: false, text: 'NO' });
    const slower = Math.max(result.timing.mainMs, result.timing.checkMs);
    expect(result.timing.mainMs).toBeGreaterThan(result.timing.checkMs);
    expect(result.timing.wallMs - slower).toBeLessThan(50);
    expect(r.log().every((e) => !e.aborted)).toBe(true);
    expect(result.cost.calls).toBe(2);
    modes.record(mode, 'pass', [result.text, result.check.text]);
  });

  it('holds a finished answer until a slower check passes', async () => {
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 100 },
      script: ({ body }) => (isCheck(body) ? words('NO', 29) : 'Quick answer.'),
    });
    const result = await guardrail(r.volley, requests('Quick question', 10));
    expect(result.allowed).toBe(true);
    if (!result.allowed) return;
    expect(result.timing.checkMs).toBeGreaterThan(result.timing.mainMs + 100);
    expect(result.timing.wallMs).toBeGreaterThanOrEqual(result.timing.checkMs);
    expect(result.timing.wallMs - result.timing.checkMs).toBeLessThan(50);
    modes.record(mode, 'slow check', result.text);
  });

  it('a check in code that flags aborts the main call at the server', async () => {
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 20 },
      script: () => words('Long answer', 200),
    });
    const result = await guardrail(r.volley, {
      request: { messages: [{ role: 'user', content: 'my card number is 4111 1111 1111 1111' }] },
      // It flags once the main call is generating at the server (not after a fixed delay, which
      // raced a worker thread's first request, slower to go out on Node 24).
      check: async () => {
        await waitFor(() => r.log().length > 0);
        return { flagged: true, reason: 'contains a card number' };
      },
      refusal: 'Please do not share card numbers.',
    });
    expect(result).toMatchObject({
      allowed: false,
      refusal: 'Please do not share card numbers.',
      mainAborted: true,
      check: { flagged: true, reason: 'contains a card number' },
    });
    const main = await waitFor(() => r.log()[0]?.finishedAt !== undefined && r.log()[0]);
    expect(main.aborted).toBe(true);
    await limiterIdle(r.volley);
    modes.record(mode, 'code check', result.allowed);
  });

  it('a failing check throws by default, and can refuse or allow instead', async () => {
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 20 },
      script: ({ body }) => (isCheck(body) ? 'NO' : words('Answer', 10)),
      faultFor: ({ body }) => (isCheck(body) ? 'status-400-context-length' : undefined),
    });
    const { check } = requests('input', 20);
    // The check's 400 comes once the main call is generating at the server.
    const slowFailingCheck = async ({ signal }: { signal: AbortSignal }): Promise<boolean> => {
      await waitFor(() => r.log().some((e) => !isCheck(e.body)));
      await r.volley.chat(check as ChatInput, { signal });
      return false;
    };
    const thrown = await guardrail(r.volley, {
      ...requests('input', 20),
      check: slowFailingCheck,
    }).catch((e: unknown) => e);
    expect(codeOf(thrown)).toBe(ErrorCode.HTTP);
    const main = await waitFor(() => {
      const entry = r.log().find((e) => !isCheck(e.body));
      return entry?.finishedAt !== undefined && entry;
    });
    expect(main.aborted).toBe(true);

    const refused = await guardrail(r.volley, {
      ...requests('input', 20),
      onCheckError: 'refuse',
    });
    expect(refused.allowed).toBe(false);
    expect(codeOf(refused.check.error)).toBe(ErrorCode.HTTP);

    const allowed = await guardrail(r.volley, { ...requests('input', 20), onCheckError: 'allow' });
    expect(allowed.allowed).toBe(true);
    if (allowed.allowed) expect(allowed.text).toBe(words('Answer', 10));
    await limiterIdle(r.volley);
    modes.record(mode, 'check fails', [codeOf(thrown), refused.allowed, allowed.allowed]);
  });

  it('a failing main call rejects with its own error', async () => {
    await using r = await rig(mode, {
      script: ({ body }) => (isCheck(body) ? 'NO' : undefined),
      faultFor: ({ body }) => (isCheck(body) ? undefined : 'status-400-context-length'),
    });
    const error = await guardrail(r.volley, requests('input', 20)).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCode.HTTP);
    modes.record(mode, 'main fails', codeOf(error));
  });

  it('a caller abort rejects with VOLLEY_ERR_ABORTED', async () => {
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 20 },
      script: () => words('slow', 100),
    });
    const controller = new AbortController();
    // Once both calls are generating at the server (see the code check above).
    const abort = (): void => controller.abort();
    void waitFor(() => r.log().length === 2).then(abort, abort);
    const error = await guardrail(r.volley, {
      ...requests('input', 200),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCode.ABORTED);
    const log = await waitFor(() => {
      const entries = r.log();
      return entries.length === 2 && entries.every((e) => e.finishedAt !== undefined) && entries;
    });
    expect(log.every((e) => e.aborted)).toBe(true);
    modes.record(mode, 'abort', codeOf(error));
  });
});

describe('both modes', () => {
  it('give the same results', () => {
    modes.check();
  });
});

describe('isFlaggedAnswer', () => {
  it.each(['YES', 'Yes.', '**Yes**', 'unsafe', 'Flagged: hate speech', 'TRUE'])('flags %j', (t) => {
    expect(isFlaggedAnswer(t)).toBe(true);
  });
  it.each(['NO', 'No.', 'safe', '', 'Yesterday I went out', 'Not harmful'])('passes %j', (t) => {
    expect(isFlaggedAnswer(t)).toBe(false);
  });
});

describe('guardrail without a runtime', () => {
  it('a caller abort settles even when the check ignores its signal after the main call ended', async () => {
    const client = {
      chat: () =>
        Promise.resolve({
          id: 'x',
          object: 'chat.completion' as const,
          created: 0,
          model: 'm',
          choices: [
            {
              index: 0,
              message: { role: 'assistant' as const, content: 'answer' },
              finish_reason: 'stop' as const,
            },
          ],
        }),
    };
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await expect(
      guardrail(client, {
        request: { messages: [{ role: 'user', content: 'hi' }] },
        check: () => new Promise<boolean>(() => {}),
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ code: ErrorCode.ABORTED });
  });
});
