import { ErrorCode, VolleyError } from '@volley/core';
import { describe, expect, it } from 'vitest';
import { isRetryable } from '../src/batch/failure.js';
import { retryLine } from '../src/run/batch-run.js';

describe('isRetryable (what --resume sends again)', () => {
  const error = (
    code: (typeof ErrorCode)[keyof typeof ErrorCode],
    status?: number,
    retryable?: boolean,
  ) =>
    new VolleyError(code, 'x', {
      ...(status === undefined ? {} : { status }),
      ...(retryable === undefined ? {} : { retryable }),
    });

  it('retries transient failures', () => {
    for (const e of [
      error(ErrorCode.RETRIES_EXHAUSTED, 503),
      error(ErrorCode.TIMEOUT),
      error(ErrorCode.CONNECT),
      error(ErrorCode.CONNECTION_LOST),
      error(ErrorCode.RATE_LIMITED, 429),
      error(ErrorCode.HTTP, 500),
      error(ErrorCode.HTTP, 408),
      error(ErrorCode.TRUNCATED_STREAM),
      error(ErrorCode.WORKER_CRASHED),
    ]) {
      expect(isRetryable(e), e.code).toBe(true);
    }
  });

  it('keeps failures that would fail again', () => {
    for (const e of [
      error(ErrorCode.HTTP, 400),
      error(ErrorCode.HTTP, 404),
      error(ErrorCode.HTTP, 422),
      error(ErrorCode.HTTP, 503, false), // x-should-retry: false
      error(ErrorCode.RESPONSE_TOO_LARGE),
      new Error('not a VolleyError'),
    ]) {
      expect(isRetryable(e)).toBe(false);
    }
  });
});

describe('retryLine', () => {
  it('keeps a line as written, adding the implicit custom_id of a convenience line', () => {
    const batch = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}';
    expect(retryLine(batch, 'a', 3)).toBe(batch);
    expect(retryLine('{"prompt":"hi"}', 'line-7', 7)).toBe('{"custom_id":"line-7","prompt":"hi"}');
    expect(retryLine('{"custom_id":"line-7","prompt":"hi"}', 'line-7', 7)).toBe(
      '{"custom_id":"line-7","prompt":"hi"}',
    );
    expect(JSON.parse(retryLine(' { "prompt" : "x" }', 'line-1', 1))).toEqual({
      custom_id: 'line-1',
      prompt: 'x',
    });
  });
});
