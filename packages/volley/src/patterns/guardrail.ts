/**
 * Guardrail beside the response: the check and the main call start together.
 *
 *   check flags first   -> the main call is aborted mid-generation (HTTP request cancelled,
 *                          reservation returned) and a refusal comes back at once
 *   main finishes first -> held until the check passes; then returned
 *   both pass           -> latency is the slower of the two, nothing added
 *
 * The main response is never handed out before the check has passed.
 */
import type { ChatCompletion } from '@volley/core';
import { ErrorCode, VolleyError, withSpan } from '@volley/core';
import type { ChatInput } from '../create-volley.js';
import type { ChatClient, TokenCost } from './shared.js';
import {
  abortedError,
  addUsage,
  createScope,
  elapsedSince,
  emptyCost,
  now,
  textOf,
  toError,
} from './shared.js';

/** A check in code (a regex, a moderation API, a classifier); `signal` aborts when no longer needed. */
export type GuardrailCheck = (context: {
  signal: AbortSignal;
}) => Promise<boolean | { flagged: boolean; reason?: string }>;

/** Options of {@link guardrail}. */
export interface GuardrailOptions {
  /** The main call. */
  request: ChatInput;
  /** The check: a chat request (e.g. "Reply only YES or NO: is this harmful?") or a function. */
  check: ChatInput | GuardrailCheck;
  /** Reads an LLM check's answer. Default {@link isFlaggedAnswer}. */
  isFlagged?: (checkText: string) => boolean;
  /** What a flagged input gets back. Default: "I'm unable to help with that request." */
  refusal?: string;
  /**
   * When the check itself fails: `'throw'` (default) aborts the main call and rejects with the
   * check's error; `'refuse'` aborts it and refuses (fail closed); `'allow'` returns the main response.
   */
  onCheckError?: 'throw' | 'refuse' | 'allow';
  /** Aborts both calls; `guardrail` rejects with `VOLLEY_ERR_ABORTED`. */
  signal?: AbortSignal;
  /** Budget of each call across its retries. */
  timeoutMs?: number;
}

/** What the check said. */
export interface GuardrailCheckReport {
  flagged: boolean;
  /** An LLM check's answer text. */
  text?: string;
  reason?: string;
  /** The check failed (see `onCheckError`). */
  error?: Error;
  latencyMs: number;
}

/** The main response when the check passed, or a refusal when it flagged the input. */
export type GuardrailResult =
  | {
      allowed: true;
      response: ChatCompletion;
      text: string;
      check: GuardrailCheckReport;
      /** Main call's and wall time: the wall time is the slower of the two calls. */
      timing: { mainMs: number; checkMs: number; wallMs: number };
      cost: TokenCost;
    }
  | {
      allowed: false;
      refusal: string;
      check: GuardrailCheckReport;
      /** True when the main call was still running and got aborted; false if it had already ended. */
      mainAborted: boolean;
      timing: { mainMs: number | undefined; checkMs: number; wallMs: number };
      cost: TokenCost;
    };

const DEFAULT_REFUSAL = "I'm unable to help with that request.";

/**
 * The default reading of an LLM check's answer: flagged when it opens with yes, unsafe, flagged,
 * harmful, block(ed) or true. Anything else (no, safe, an empty answer) passes, so write check
 * prompts that answer YES for inputs to refuse.
 */
export function isFlaggedAnswer(text: string): boolean {
  return /^[\s*_`"'([]*(yes|unsafe|flag(ged)?|harmful|block(ed)?|true)\b/i.test(text);
}

/**
 * Runs a check beside the main call. If the check flags the input, the main call is aborted
 * (not merely discarded) and a refusal returned; if it passes, the main response is returned
 * with no latency beyond the slower of the two.
 *
 * @example
 * const result = await guardrail(volley, {
 *   request: { messages: [{ role: 'user', content: userInput }] },
 *   check: {
 *     model: 'gpt-4o-mini',
 *     messages: [{ role: 'user', content: `Is this harmful? Reply only YES or NO.\n\n${userInput}` }],
 *     max_tokens: 1,
 *   },
 * });
 * console.log(result.allowed ? result.text : result.refusal);
 */
export function guardrail(client: ChatClient, options: GuardrailOptions): Promise<GuardrailResult> {
  return withSpan(`volley.guardrail`, { 'volley.pattern': 'guardrail' }, () =>
    runGuardrail(client, options),
  );
}

function runGuardrail(client: ChatClient, options: GuardrailOptions): Promise<GuardrailResult> {
  const started = now();
  const refusal = options.refusal ?? DEFAULT_REFUSAL;
  const isFlagged = options.isFlagged ?? isFlaggedAnswer;
  const onCheckError = options.onCheckError ?? 'throw';
  // Two scopes: the check and the main call are cancelled separately (a flag aborts only the main).
  const mainScope = createScope(options.signal);
  const checkScope = createScope(options.signal);
  const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  const cost = emptyCost();

  type MainState =
    | { state: 'running' }
    | { state: 'done'; completion: ChatCompletion; ms: number }
    | { state: 'failed'; error: Error; ms: number };
  let main: MainState = { state: 'running' };
  let check: GuardrailCheckReport | undefined;
  let finished = false;

  return new Promise<GuardrailResult>((resolve, reject) => {
    const end = (): void => {
      finished = true;
      options.signal?.removeEventListener('abort', settle);
      mainScope.dispose();
      checkScope.dispose();
    };
    const refuse = (report: GuardrailCheckReport): void => {
      const mainAborted = main.state === 'running';
      // Abort, not discard: the request is cancelled at the server and its reservation returned.
      if (mainAborted)
        mainScope.abort(new VolleyError(ErrorCode.ABORTED, 'guardrail flagged the input'));
      end();
      resolve({
        allowed: false,
        refusal,
        check: report,
        mainAborted,
        timing: {
          mainMs: main.state === 'running' ? undefined : main.ms,
          checkMs: report.latencyMs,
          wallMs: elapsedSince(started),
        },
        cost,
      });
    };
    const fail = (error: Error): void => {
      mainScope.abort(error);
      checkScope.abort(error);
      end();
      reject(error);
    };
    // Called whenever either side settles; decides once both are known or one decides alone.
    const settle = (): void => {
      if (finished) return;
      if (options.signal?.aborted) {
        fail(abortedError('guardrail', options.signal));
      } else if (check?.flagged === true) {
        refuse(check);
      } else if (check?.error !== undefined && onCheckError === 'throw') {
        fail(check.error);
      } else if (check?.error !== undefined && onCheckError === 'refuse') {
        refuse(check);
      } else if (main.state === 'failed') {
        // A failed main call has nothing to hold back: report it without waiting for the check.
        fail(main.error);
      } else if (check !== undefined && main.state === 'done') {
        end();
        resolve({
          allowed: true,
          response: main.completion,
          text: textOf(main.completion),
          check,
          timing: { mainMs: main.ms, checkMs: check.latencyMs, wallMs: elapsedSince(started) },
          cost,
        });
      }
    };

    if (options.signal?.aborted) {
      fail(abortedError('guardrail', options.signal));
      return;
    }
    // Heard directly, not only through the calls' rejections: a check function may ignore its
    // signal after the main call has already finished.
    options.signal?.addEventListener('abort', settle, { once: true });

    const checkStarted = now();
    const runCheck = async (): Promise<GuardrailCheckReport> => {
      const checkSpec = options.check;
      if (typeof checkSpec === 'function') {
        const verdict = await checkSpec({ signal: checkScope.signal });
        const latencyMs = elapsedSince(checkStarted);
        if (typeof verdict === 'boolean') return { flagged: verdict, latencyMs };
        return {
          flagged: verdict.flagged,
          ...(verdict.reason === undefined ? {} : { reason: verdict.reason }),
          latencyMs,
        };
      }
      const completion = await client.chat(checkSpec, { signal: checkScope.signal, ...timeout });
      addUsage(cost, completion.usage);
      const text = textOf(completion);
      return { flagged: isFlagged(text), text, latencyMs: elapsedSince(checkStarted) };
    };
    void runCheck().then(
      (report) => {
        check = report;
        settle();
      },
      (error: unknown) => {
        check = { flagged: false, error: toError(error), latencyMs: elapsedSince(checkStarted) };
        settle();
      },
    );

    const mainStarted = now();
    void client.chat(options.request, { signal: mainScope.signal, ...timeout }).then(
      (completion) => {
        addUsage(cost, completion.usage);
        main = { state: 'done', completion, ms: elapsedSince(mainStarted) };
        settle();
      },
      (error: unknown) => {
        if (finished) return;
        main = { state: 'failed', error: toError(error), ms: elapsedSince(mainStarted) };
        settle();
      },
    );
  });
}
