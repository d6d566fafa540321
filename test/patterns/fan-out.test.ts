/**
 * fanOut and sections against a real simulator, in both modes: keyed and listed results with
 * per-item errors beside successes, measured latency saving, and cancellation at the server.
 */
import { simulatedChatContent } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { ErrorCode, fanOut, sections } from 'volley';
import { codeOf, lastMessage, MODES, parity, rig, waitFor, words } from './helpers.js';

const modes = parity();

describe.each(MODES)('fanOut (%s mode)', (mode) => {
  it('returns keyed results with a per-item error beside the successes', async () => {
    await using r = await rig(mode, {
      faultFor: ({ body }) =>
        lastMessage(body).startsWith('Entities') ? 'status-400-context-length' : undefined,
    });
    const doc = 'Acme Corp reported record Q4 earnings.';
    const requests = {
      summary: { messages: [{ role: 'user' as const, content: `Summarise: ${doc}` }] },
      sentiment: { messages: [{ role: 'user' as const, content: `Sentiment: ${doc}` }] },
      entities: { messages: [{ role: 'user' as const, content: `Entities: ${doc}` }] },
    };
    const result = await fanOut(r.volley, requests);
    expect(Object.keys(result.results)).toEqual(['summary', 'sentiment', 'entities']);
    expect(result.succeeded).toBe(2);
    expect(result.failed).toBe(1);
    for (const key of ['summary', 'sentiment'] as const) {
      const outcome = result.results[key];
      expect(outcome.ok).toBe(true);
      if (outcome.ok) {
        const expected = simulatedChatContent({ model: 'volley-sim-1', ...requests[key] });
        expect(outcome.value.text).toBe(expected.content);
      }
    }
    const failed = result.results.entities;
    expect(failed.ok).toBe(false);
    if (!failed.ok) {
      expect(codeOf(failed.error)).toBe(ErrorCode.HTTP);
      expect((failed.error as { status?: number }).status).toBe(400);
    }
    expect(result.cost.calls).toBe(2);
    expect(result.cost.totalTokens).toBeGreaterThan(0);
    modes.record(mode, 'keyed', {
      keys: Object.keys(result.results),
      outcomes: Object.values(result.results).map((o) => (o.ok ? o.value.text : codeOf(o.error))),
    });
  });

  it('keeps input order for listed requests and measures the latency saved', async () => {
    // 20 words at 100 tokens/s: each call takes about 200 ms, one after another about 800 ms.
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 100 },
      script: ({ body }) => words(`answer to ${lastMessage(body)}`, 17),
    });
    const requests = [0, 1, 2, 3].map((i) => ({
      messages: [{ role: 'user' as const, content: `question ${i}` }],
    }));
    const result = await fanOut(r.volley, requests);
    expect(
      result.results.map((o) => (o.ok ? o.value.text.split(' filler')[0] : undefined)),
    ).toEqual([
      'answer to question 0',
      'answer to question 1',
      'answer to question 2',
      'answer to question 3',
    ]);
    for (const outcome of result.results) expect(outcome.latencyMs).toBeGreaterThanOrEqual(150);
    expect(result.sumCallMs).toBeCloseTo(
      result.results.reduce((sum, o) => sum + o.latencyMs, 0),
      0,
    );
    // Run at once, the four calls take about as long as one.
    expect(result.sumCallMs).toBeGreaterThan(2.5 * result.wallMs);
    expect(result.savedMs).toBeCloseTo(result.sumCallMs - result.wallMs, 0);
    modes.record(
      mode,
      'listed',
      result.results.map((o) => o.ok && o.value.text),
    );
  });

  it('sections one input under several system prompts', async () => {
    await using r = await rig(mode);
    const code = 'def get_user(id): return db.query(f"SELECT * FROM users WHERE id={id}")';
    const requests = sections(
      code,
      { security: 'Review for security only.', performance: 'Review for performance only.' },
      { max_tokens: 12 },
    );
    const result = await fanOut(r.volley, requests);
    expect(result.succeeded).toBe(2);
    const bodies = r
      .log()
      .map(
        (entry) =>
          entry.body as { max_tokens: number; messages: Array<{ role: string; content: string }> },
      );
    expect(bodies.map((body) => body.messages[0]?.content).sort()).toEqual([
      'Review for performance only.',
      'Review for security only.',
    ]);
    for (const body of bodies) {
      expect(body.max_tokens).toBe(12);
      expect(body.messages[1]).toEqual({ role: 'user', content: code });
    }
    expect(sections('x', ['a', 'b'])).toHaveLength(2);
    modes.record(
      mode,
      'sections',
      Object.values(result.results).map((o) => o.ok && o.value.text),
    );
  });

  it('a caller abort cancels every call at the server and still returns per-item outcomes', async () => {
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 20 },
      script: () => words('slow', 100),
    });
    const controller = new AbortController();
    // Abort once all three are generating at the server: the case under test is a cancel that
    // must reach calls on the wire (a fixed delay raced a worker thread's first request, slower
    // to go out on Node 24).
    const abort = (): void => controller.abort();
    void waitFor(() => r.log().length === 3).then(abort, abort);
    const started = Date.now();
    const result = await fanOut(
      r.volley,
      [0, 1, 2].map((i) => ({ messages: [{ role: 'user' as const, content: `slow ${i}` }] })),
      { signal: controller.signal },
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result.failed).toBe(3);
    for (const outcome of result.results) {
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(codeOf(outcome.error)).toBe(ErrorCode.ABORTED);
    }
    const log = await waitFor(() => {
      const entries = r.log();
      return entries.length === 3 && entries.every((e) => e.finishedAt !== undefined) && entries;
    });
    expect(log.every((entry) => entry.aborted)).toBe(true);
    modes.record(
      mode,
      'aborted',
      result.results.map((o) => !o.ok && codeOf(o.error)),
    );
  });
});

describe('both modes', () => {
  it('give the same results', () => {
    modes.check();
  });
});
