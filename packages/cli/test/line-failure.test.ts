import { ErrorCode, VolleyError } from '@volley/core';
import { describe, expect, it } from 'vitest';
import { failureDetails, leavesLinePending } from '../src/batch/failure.js';

describe('leavesLinePending (the one rule of run, embed and --samples)', () => {
  it('leaves the line pending when the failure belongs to the run', () => {
    for (const code of [ErrorCode.NO_ENDPOINT, ErrorCode.ENDPOINT_DOWN, ErrorCode.STOPPED]) {
      expect(leavesLinePending(new VolleyError(code, 'x'), false), code).toBe(true);
    }
    expect(leavesLinePending(new VolleyError(ErrorCode.ABORTED, 'x'), true)).toBe(true);
  });

  it('records an abort the run did not cause, and every failure of the line itself', () => {
    expect(leavesLinePending(new VolleyError(ErrorCode.ABORTED, 'x'), false)).toBe(false);
    for (const error of [
      new VolleyError(ErrorCode.HTTP, 'bad', { status: 400 }),
      new VolleyError(ErrorCode.RETRIES_EXHAUSTED, 'busy', { status: 503 }),
      new Error('not coded'),
    ]) {
      expect(leavesLinePending(error, true)).toBe(false);
    }
  });
});

describe('failureDetails', () => {
  it('takes attempts and the transient verdict from the final error', () => {
    const error = new VolleyError(ErrorCode.HTTP, 'bad request', {
      status: 400,
      attempts: 3,
      transient: true,
      errorType: 'invalid_request_error',
    });
    expect(failureDetails(error)).toEqual({
      code: ErrorCode.HTTP,
      message: 'bad request',
      status: 400,
      attempts: 3,
      retryable: true,
      serverCode: 'invalid_request_error',
    });
  });

  it('finds a status among the causes, and codes what is not a VolleyError as internal', () => {
    const wrapped = new VolleyError(ErrorCode.RETRIES_EXHAUSTED, 'gave up', {
      cause: new VolleyError(ErrorCode.HTTP, 'busy', { status: 503 }),
    });
    expect(failureDetails(wrapped)).toMatchObject({ status: 503, retryable: true });
    expect(failureDetails(new Error('boom'))).toEqual({
      code: 'VOLLEY_ERR_INTERNAL',
      message: 'boom',
      status: undefined,
      attempts: undefined,
      retryable: false,
      serverCode: undefined,
    });
  });
});
