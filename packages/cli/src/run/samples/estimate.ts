/**
 * `--dry-run` with `--samples`: the estimates of one request per line, scaled to what sampling
 * sends. Every sample is counted (a vote's early stop can only save on this), and with
 * `--select judge` the judge call too: the line's query, every sample's answer at its
 * `max_tokens`, and the judge's framing.
 */

import type { TokenEstimate } from '../lines.js';
import { JUDGE_MAX_TOKENS } from './judge.js';
import type { SamplingSettings } from './settings.js';

/** Judge prompt tokens besides the query and the answers: instructions, then per response a header. */
const JUDGE_FRAMING_TOKENS = 60;
const JUDGE_TOKENS_PER_RESPONSE = 8;

/**
 * The estimate for a sampled run. The judge's tokens are counted under the judge's model (which
 * prices them), with no lines of its own.
 *
 * @example
 * scaleEstimate(pre.tokens, { samples: 3, select: 'all', judgeModel: null, judgeInstructions: null });
 * // prompt and maxOutput three times the estimate of one request per line
 */
export function scaleEstimate(tokens: TokenEstimate, settings: SamplingSettings): TokenEstimate {
  const n = settings.samples;
  const scaled: TokenEstimate = { prompt: 0, maxOutput: 0, byModel: new Map() };
  const add = (model: string, lines: number, prompt: number, maxOutput: number): void => {
    scaled.prompt += prompt;
    scaled.maxOutput += maxOutput;
    const entry = scaled.byModel.get(model) ?? { lines: 0, prompt: 0, maxOutput: 0 };
    entry.lines += lines;
    entry.prompt += prompt;
    entry.maxOutput += maxOutput;
    scaled.byModel.set(model, entry);
  };
  for (const [model, t] of tokens.byModel) {
    add(model, t.lines, t.prompt * n, t.maxOutput * n);
    if (settings.select === 'judge') {
      const framing = t.lines * (JUDGE_FRAMING_TOKENS + n * JUDGE_TOKENS_PER_RESPONSE);
      add(
        settings.judgeModel ?? model,
        0,
        t.prompt + t.maxOutput * n + framing,
        t.lines * JUDGE_MAX_TOKENS,
      );
    }
  }
  return scaled;
}
