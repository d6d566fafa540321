/**
 * LineSampler against a scripted stand-in for the runtime: which sample answers what, which fail,
 * and which are aborted, exactly (the end-to-end test in test/cli-samples.test.ts runs the real
 * runtime and simulator).
 */

import { describe, expect, it } from 'vitest';
import type { CallResult, Volley } from 'volley';
import { ErrorCode, VolleyError } from 'volley';
import type { BatchRequest } from '../src/jsonl/batch-line.js';
import type { SampleMeta } from '../src/run/samples/sampler.js';
import { LineSampler } from '../src/run/samples/sampler.js';
import type { SamplingSettings } from '../src/run/samples/settings.js';

/** What the n-th call (0-based, in the order sent) gets. */
interface Reply {
  text?: string;
  error?: Error;
  delayMs?: number;
}

interface Sent {
  body: Record<string, unknown>;
  aborted: boolean;
}

const USAGE = { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 };

function fakeVolley(reply: (call: number) => Reply): { volley: Volley; sent: Sent[] } {
  const sent: Sent[] = [];
  const request = ({ body, signal }: { body: Record<string, unknown>; signal?: AbortSignal }) => {
    const call = sent.length;
    const entry: Sent = { body, aborted: false };
    sent.push(entry);
    const { text = '', error, delayMs = 0 } = reply(call);
    return new Promise<CallResult>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        if (error !== undefined) {
          reject(error);
          return;
        }
        const answer = {
          id: `chatcmpl-${call}`,
          object: 'chat.completion',
          model: String(body.model),
          choices: [
            { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' },
          ],
          usage: USAGE,
        };
        resolve({
          status: 200,
          requestId: `req_${call}`,
          bodyText: JSON.stringify(answer),
          usage: USAGE,
          attempts: 1,
          endpoint: 0,
          latencyMs: 1,
          waitedMs: 0,
        });
      }, delayMs);
      signal?.addEventListener('abort', () => {
        // As at the runtime: aborting a call that has completed changes nothing.
        if (settled) return;
        clearTimeout(timer);
        entry.aborted = true;
        reject(new VolleyError(ErrorCode.ABORTED, 'aborted'));
      });
    });
  };
  return { volley: { request } as unknown as Volley, sent };
}

const LINE: BatchRequest = {
  customId: 'q',
  url: '/v1/chat/completions',
  body: { model: 'm', messages: [{ role: 'user', content: 'Is it?' }], temperature: 0.9 },
};

function settings(select: SamplingSettings['select'], samples: number): SamplingSettings {
  return { samples, select, judgeModel: null, judgeInstructions: null };
}

const serverError = (): VolleyError =>
  new VolleyError(ErrorCode.HTTP, 'server error', { status: 500 });

function contentOf(bodyText: string): string[] {
  const body = JSON.parse(bodyText) as { choices: Array<{ message: { content: string } }> };
  return body.choices.map((choice) => choice.message.content);
}

function metaOf<S extends SampleMeta['select']>(
  meta: SampleMeta,
  select: S,
): Extract<SampleMeta, { select: S }> {
  expect(meta.select).toBe(select);
  return meta as Extract<SampleMeta, { select: S }>;
}

describe('LineSampler, --select all', () => {
  it('sends the line as written n times and merges the answers in sample order', async () => {
    const { volley, sent } = fakeVolley((call) => ({ text: `answer ${call}`, delayMs: 3 - call }));
    const sampler = new LineSampler(volley, settings('all', 3));
    const line = await sampler.sample(LINE);
    expect(sent.map((s) => s.body)).toEqual([LINE.body, LINE.body, LINE.body]);
    expect(contentOf(line.response.bodyText)).toEqual(['answer 0', 'answer 1', 'answer 2']);
    expect(JSON.parse(line.response.bodyText).usage).toEqual({
      prompt_tokens: 30,
      completion_tokens: 6,
      total_tokens: 36,
    });
    expect(line.response.requestId).toBe('req_0');
    expect(line.volley).toEqual({
      samples: 3,
      select: 'all',
      failed: 0,
      usage: { prompt_tokens: 30, completion_tokens: 6, total_tokens: 36 },
    });
    expect(line.spend).toHaveLength(3);
    expect(sampler.calls).toBe(3);
  });

  it('writes the successes and counts the failures', async () => {
    const { volley } = fakeVolley((call) =>
      call === 1 ? { error: serverError() } : { text: `answer ${call}` },
    );
    const line = await new LineSampler(volley, settings('all', 3)).sample(LINE);
    expect(contentOf(line.response.bodyText)).toEqual(['answer 0', 'answer 2']);
    expect(line.volley).toMatchObject({
      failed: 1,
      errors: [{ sample: 1, code: 'VOLLEY_ERR_HTTP', message: 'server error' }],
    });
  });

  it('fails with the first sample error when every sample failed', async () => {
    const errors = [serverError(), serverError()];
    const { volley } = fakeVolley((call) => ({ error: errors[call] as Error, delayMs: 2 - call }));
    await expect(new LineSampler(volley, settings('all', 2)).sample(LINE)).rejects.toBe(errors[0]);
  });

  it('fails the line with a stop of the run, even when other samples succeeded', async () => {
    const stopped = new VolleyError(ErrorCode.STOPPED, 'runtime is closing');
    const { volley } = fakeVolley((call) => (call === 2 ? { error: stopped } : { text: 'x' }));
    await expect(new LineSampler(volley, settings('all', 3)).sample(LINE)).rejects.toBe(stopped);
  });
});

describe('LineSampler, --select vote', () => {
  it('stops once the winner cannot change, aborting the samples still running', async () => {
    const replies: Reply[] = [
      { text: 'Yes' },
      { text: 'no' },
      { text: '**yes.**' },
      { text: 'YES', delayMs: 5 },
      { text: 'no', delayMs: 10_000 },
    ];
    const { volley, sent } = fakeVolley((call) => replies[call] as Reply);
    const sampler = new LineSampler(volley, settings('vote', 5));
    const line = await sampler.sample(LINE);
    const meta = metaOf(line.volley, 'vote');
    expect(meta).toMatchObject({
      winner: 'yes',
      decided: true,
      votes: { yes: 3, no: 1 },
      selected: 0,
      cancelled: 1,
      failed: 0,
      usage: { prompt_tokens: 40 },
    });
    expect(contentOf(line.response.bodyText)).toEqual(['Yes']);
    expect(sent.map((s) => s.aborted)).toEqual([false, false, false, false, true]);
    expect(line.spend).toHaveLength(4);
    expect(sampler.calls).toBe(5);
  });

  it('breaks a tie by the earliest sample, and says it was not decided', async () => {
    const { volley } = fakeVolley((call) => ({
      text: ['b', 'a'][call] as string,
      delayMs: 2 - call,
    }));
    const meta = metaOf(
      (await new LineSampler(volley, settings('vote', 2)).sample(LINE)).volley,
      'vote',
    );
    expect(meta).toMatchObject({ winner: 'b', decided: false, selected: 0, votes: { b: 1, a: 1 } });
  });

  it('does not count a failed sample as a vote', async () => {
    const replies: Reply[] = [{ error: serverError() }, { text: 'x' }, { text: 'y' }];
    const { volley } = fakeVolley((call) => replies[call] as Reply);
    const line = await new LineSampler(volley, settings('vote', 3)).sample(LINE);
    expect(metaOf(line.volley, 'vote')).toMatchObject({
      winner: 'x',
      selected: 1,
      failed: 1,
      votes: { x: 1, y: 1 },
      errors: [{ sample: 0, code: 'VOLLEY_ERR_HTTP' }],
    });
    expect(line.response.requestId).toBe('req_1');
  });

  it('writes the first sample when every answer was empty', async () => {
    const { volley } = fakeVolley(() => ({ text: ' ' }));
    const meta = metaOf(
      (await new LineSampler(volley, settings('vote', 3)).sample(LINE)).volley,
      'vote',
    );
    expect(meta).toMatchObject({ winner: null, decided: false, selected: 0, votes: {} });
  });

  it('fails with the first sample error when every sample failed', async () => {
    const errors = [serverError(), serverError(), serverError()];
    const { volley } = fakeVolley((call) => ({ error: errors[call] as Error }));
    await expect(new LineSampler(volley, settings('vote', 3)).sample(LINE)).rejects.toBe(errors[0]);
  });
});

describe('LineSampler, --select judge', () => {
  const judged = (judge: Reply) =>
    fakeVolley((call) => (call < 3 ? { text: ['alpha', 'beta', 'gamma'][call] as string } : judge));

  it("writes the judge's pick and counts the judge's tokens", async () => {
    const { volley, sent } = judged({ text: 'Response 3 is the best.' });
    const sampler = new LineSampler(volley, { ...settings('judge', 3), judgeModel: 'judge-1' });
    const line = await sampler.sample(LINE);
    expect(contentOf(line.response.bodyText)).toEqual(['gamma']);
    expect(metaOf(line.volley, 'judge')).toEqual({
      samples: 3,
      select: 'judge',
      failed: 0,
      usage: { prompt_tokens: 40, completion_tokens: 8, total_tokens: 48 },
      selected: 2,
      model: 'judge-1',
      verdict: { method: 'judge', parsed: true, raw: 'Response 3 is the best.' },
    });
    expect(sent[3]?.body.model).toBe('judge-1');
    expect(JSON.stringify(sent[3]?.body.messages)).toContain('--- Response 2 ---\\nbeta');
    expect(line.spend.map((s) => s.model)).toEqual(['m', 'm', 'm', 'judge-1']);
    expect(sampler.calls).toBe(4);
  });

  it('keeps the first sample when the judge answers nonsense', async () => {
    const { volley } = judged({ text: 'banana' });
    const line = await new LineSampler(volley, settings('judge', 3)).sample(LINE);
    expect(contentOf(line.response.bodyText)).toEqual(['alpha']);
    expect(metaOf(line.volley, 'judge')).toMatchObject({
      selected: 0,
      model: 'm',
      verdict: { method: 'judge', parsed: false, reason: 'unparseable', raw: 'banana' },
    });
  });

  it('keeps the first sample when the judge call fails, but not when the run stops', async () => {
    const failed = await new LineSampler(
      judged({ error: serverError() }).volley,
      settings('judge', 3),
    ).sample(LINE);
    expect(metaOf(failed.volley, 'judge')).toMatchObject({
      selected: 0,
      verdict: { reason: 'judge-failed', error: { code: 'VOLLEY_ERR_HTTP' } },
      usage: { prompt_tokens: 30 },
    });
    const stopped = new VolleyError(ErrorCode.NO_ENDPOINT, 'every endpoint stopped');
    await expect(
      new LineSampler(judged({ error: stopped }).volley, settings('judge', 3)).sample(LINE),
    ).rejects.toBe(stopped);
  });

  it('makes no judge call when only one sample succeeded', async () => {
    const { volley, sent } = fakeVolley((call) =>
      call === 1 ? { text: 'only' } : { error: serverError() },
    );
    const line = await new LineSampler(volley, settings('judge', 3)).sample(LINE);
    expect(sent).toHaveLength(3);
    expect(metaOf(line.volley, 'judge')).toMatchObject({
      selected: 1,
      failed: 2,
      verdict: { method: 'single' },
    });
  });
});
