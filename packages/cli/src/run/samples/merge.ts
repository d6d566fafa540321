/**
 * Pure helpers over the response bodies of a line's samples: the text a vote or a judge compares,
 * the merge `--select all` writes, and usage sums.
 */

/** A parsed `/v1/chat/completions` or `/v1/completions` response body. */
export type ResponseBody = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The first choice's text: `message.content` of a chat completion (text parts joined), `text` of
 * a completion; `''` when there is none (a tool call, a refusal, a malformed body).
 *
 * @example
 * answerText({ choices: [{ index: 0, message: { role: 'assistant', content: 'Yes.' } }] }); // 'Yes.'
 * answerText({ choices: [{ index: 0, text: ' Paris' }] }); // ' Paris'
 */
export function answerText(body: ResponseBody): string {
  const choice: unknown = Array.isArray(body.choices) ? body.choices[0] : undefined;
  if (!isRecord(choice)) return '';
  if (isRecord(choice.message)) {
    const { content } = choice.message;
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      return content
        .map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : ''))
        .join('');
    }
    return '';
  }
  return typeof choice.text === 'string' ? choice.text : '';
}

/**
 * Sums usage objects field by field, nested details included (`completion_tokens_details.
 * reasoning_tokens`): every number is added, anything else is kept from the first that has it.
 * Undefined when no sample reported usage.
 *
 * @example
 * sumUsage([{ prompt_tokens: 3, completion_tokens: 1 }, { prompt_tokens: 3, completion_tokens: 2 }]);
 * // { prompt_tokens: 6, completion_tokens: 3 }
 */
export function sumUsage(usages: readonly unknown[]): Record<string, unknown> | undefined {
  const present = usages.filter(isRecord);
  return present.length === 0 ? undefined : sumRecords(present);
}

function sumRecords(records: readonly Record<string, unknown>[]): Record<string, unknown> {
  const sum: Record<string, unknown> = {};
  for (const record of records) {
    for (const [key, value] of Object.entries(record)) {
      // A server's JSON can hold any key; assigning this one would replace the prototype.
      if (key === '__proto__') continue;
      const previous = sum[key];
      if (typeof value === 'number') {
        sum[key] = (typeof previous === 'number' ? previous : 0) + value;
      } else if (isRecord(value)) {
        sum[key] = sumRecords(isRecord(previous) ? [previous, value] : [value]);
      } else if (!(key in sum)) {
        sum[key] = value;
      }
    }
  }
  return sum;
}

/**
 * `--select all`: one body for N samples, as if the request had asked for them with OpenAI's `n`.
 * The first body's fields (`id`, `model`, `created`, ...), every sample's choices in sample order
 * re-indexed from 0, and the usage summed over the samples.
 *
 * @example
 * mergeSamples([bodyA, bodyB]).choices.map((c) => c.index); // [0, 1]
 */
export function mergeSamples(bodies: readonly ResponseBody[]): ResponseBody {
  const first = bodies[0];
  if (first === undefined) throw new Error('mergeSamples: no sample to merge');
  const choices = bodies
    .flatMap((body) => (Array.isArray(body.choices) ? (body.choices as unknown[]) : []))
    .map((choice, index) => (isRecord(choice) ? { ...choice, index } : choice));
  const usage = sumUsage(bodies.map((body) => body.usage));
  return { ...first, choices, ...(usage === undefined ? {} : { usage }) };
}
