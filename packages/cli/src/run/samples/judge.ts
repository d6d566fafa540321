/**
 * The judge call of `--select judge`: the line's query and its successful samples, numbered, and
 * the question which is best. The wording and the sampling (temperature 0, 16 tokens) follow
 * `bestOfN`'s judge, and the answer is read with its `parseJudgeChoice`.
 *
 * `bestOfN` itself cannot run the samples: it sets its own temperature on every candidate (the
 * CLI sends each line as written) and renders only chat messages (lines may be completions).
 */

import type { BatchUrl } from '../../jsonl/batch-line.js';

/** The judge's default system prompt (bestOfN's). */
export const DEFAULT_JUDGE_INSTRUCTIONS =
  'You are a strict judge. Compare the responses to the query and pick the single best one: ' +
  'the most correct, complete and helpful.';

/** Tokens a judge may answer with: a number, perhaps with a word around it. */
export const JUDGE_MAX_TOKENS = 16;

/** What the judge is asked, besides the line. */
export interface JudgeSettings {
  /** Null: the line's own model. */
  model: string | null;
  /** Null: {@link DEFAULT_JUDGE_INSTRUCTIONS}. */
  instructions: string | null;
}

/** The judge's model: `--judge-model`, else the line's own. */
export function judgeModel(settings: JudgeSettings, lineBody: Record<string, unknown>): string {
  return settings.model ?? String(lineBody.model);
}

/**
 * The judge's request body, for the line's own endpoint (a chat call for a chat line, a
 * completion for a completion line: the default judge is the line's model, which may only do
 * one of the two). `candidates` are the texts of the successful samples, shown as Response 1..k.
 *
 * @example
 * judgeBody('/v1/chat/completions', line.body, ['Paris', 'Lyon'], { model: null, instructions: null });
 */
export function judgeBody(
  url: BatchUrl,
  lineBody: Record<string, unknown>,
  candidates: readonly string[],
  settings: JudgeSettings,
): Record<string, unknown> {
  const instructions = settings.instructions ?? DEFAULT_JUDGE_INSTRUCTIONS;
  const numbered = candidates.map((text, i) => `--- Response ${i + 1} ---\n${text}`).join('\n\n');
  const question =
    `Query:\n${renderQuery(url, lineBody)}\n\n${numbered}\n\n` +
    `Reply with ONLY the number (1 to ${candidates.length}) of the best response.`;
  const body: Record<string, unknown> = {
    model: judgeModel(settings, lineBody),
    temperature: 0,
    max_tokens: JUDGE_MAX_TOKENS,
  };
  if (url === '/v1/completions') {
    body.prompt = `${instructions}\n\n${question}\n\nBest response:`;
  } else {
    body.messages = [
      { role: 'system', content: instructions },
      { role: 'user', content: question },
    ];
  }
  return body;
}

/** The line's query as text: its messages (`role: text` when there are several) or its prompt. */
function renderQuery(url: BatchUrl, body: Record<string, unknown>): string {
  if (url === '/v1/completions') {
    const { prompt } = body;
    return typeof prompt === 'string' ? prompt : JSON.stringify(prompt);
  }
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  const texts = messages.map((message) => {
    const { role, content } = (message ?? {}) as { role?: unknown; content?: unknown };
    return { role: String(role), text: contentText(content) };
  });
  if (texts.length === 1 && texts[0] !== undefined) return texts[0].text;
  return texts.map(({ role, text }) => `${role}: ${text}`).join('\n');
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part) => {
      const text = (part as { text?: unknown } | null)?.text;
      return typeof text === 'string' ? text : '';
    })
    .join('');
}
