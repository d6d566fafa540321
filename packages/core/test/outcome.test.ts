import { describe, expect, it } from 'vitest';
import type { OutcomeClass, SerializedError } from '../src/index.js';
import {
  classifyFailure,
  ErrorCode,
  isRefusedContent,
  isTransient,
  mayHaveBeenBilled,
} from '../src/index.js';

function failure(code: string, extra: Partial<SerializedError> = {}): SerializedError {
  return { name: 'VolleyError', message: 'x', code, ...extra };
}

const http = (status: number, extra: Partial<SerializedError> = {}): SerializedError =>
  failure(ErrorCode.HTTP, { status, ...extra });

// One row per line of the table in src/outcome.ts, plus the edges each row implies.
const table: Array<[label: string, error: SerializedError, expected: OutcomeClass]> = [
  // RATE_LIMITED (429) -> retry
  ['RATE_LIMITED 429', failure(ErrorCode.RATE_LIMITED, { status: 429 }), 'retry'],
  [
    'RATE_LIMITED with retry-after',
    failure(ErrorCode.RATE_LIMITED, { status: 429, retryAfterMs: 2_000 }),
    'retry',
  ],
  // HTTP 408/409/5xx/529 -> retry
  ['HTTP 408', http(408), 'retry'],
  ['HTTP 409', http(409), 'retry'],
  ['HTTP 500', http(500), 'retry'],
  ['HTTP 502', http(502), 'retry'],
  ['HTTP 503', http(503), 'retry'],
  ['HTTP 504', http(504), 'retry'],
  ['HTTP 529', http(529), 'retry'],
  ['HTTP 599', http(599), 'retry'],
  ['HTTP 429 without the RATE_LIMITED code', http(429), 'retry'],
  // HTTP with x-should-retry:false -> fatal
  ['HTTP 503 with x-should-retry:false', http(503, { retryable: false }), 'fatal'],
  ['HTTP 429 with x-should-retry:false', http(429, { retryable: false }), 'fatal'],
  [
    'RATE_LIMITED with x-should-retry:false',
    failure(ErrorCode.RATE_LIMITED, { status: 429, retryable: false }),
    'fatal',
  ],
  // HTTP 400/404/422, other 4xx -> fatal
  ['HTTP 400', http(400), 'fatal'],
  ['HTTP 404', http(404), 'fatal'],
  ['HTTP 422', http(422), 'fatal'],
  ['HTTP 413', http(413), 'fatal'],
  ['HTTP 418', http(418), 'fatal'],
  ['HTTP without a status', failure(ErrorCode.HTTP), 'fatal'],
  // AUTH (401/403), QUOTA -> stop-endpoint
  ['AUTH 401', failure(ErrorCode.AUTH, { status: 401 }), 'stop-endpoint'],
  ['AUTH 403', failure(ErrorCode.AUTH, { status: 403 }), 'stop-endpoint'],
  [
    'QUOTA',
    failure(ErrorCode.QUOTA, { status: 429, errorType: 'insufficient_quota' }),
    'stop-endpoint',
  ],
  [
    'AUTH with retryable:false',
    failure(ErrorCode.AUTH, { status: 401, retryable: false }),
    'stop-endpoint',
  ],
  ['QUOTA with retryable:false', failure(ErrorCode.QUOTA, { retryable: false }), 'stop-endpoint'],
  // CONNECT -> retry
  ['CONNECT', failure(ErrorCode.CONNECT, { sent: false }), 'retry'],
  ['CONNECT without sent', failure(ErrorCode.CONNECT), 'retry'],
  // CONNECTION_LOST, TIMEOUT sent -> ambiguous
  ['CONNECTION_LOST sent', failure(ErrorCode.CONNECTION_LOST, { sent: true }), 'ambiguous'],
  ['CONNECTION_LOST, sent unknown', failure(ErrorCode.CONNECTION_LOST), 'ambiguous'],
  ['CONNECTION_LOST not sent', failure(ErrorCode.CONNECTION_LOST, { sent: false }), 'retry'],
  ['TIMEOUT sent', failure(ErrorCode.TIMEOUT, { sent: true }), 'ambiguous'],
  ['TIMEOUT not sent', failure(ErrorCode.TIMEOUT, { sent: false }), 'retry'],
  // TRUNCATED_STREAM, BAD_RESPONSE -> retry
  ['TRUNCATED_STREAM', failure(ErrorCode.TRUNCATED_STREAM, { sent: true }), 'retry'],
  ['BAD_RESPONSE', failure(ErrorCode.BAD_RESPONSE, { status: 200 }), 'retry'],
  // WORKER_CRASHED -> ambiguous
  ['WORKER_CRASHED', failure(ErrorCode.WORKER_CRASHED), 'ambiguous'],
  ['WORKER_CRASHED sent', failure(ErrorCode.WORKER_CRASHED, { sent: true }), 'ambiguous'],
  ['WORKER_CRASHED known not sent', failure(ErrorCode.WORKER_CRASHED, { sent: false }), 'retry'],
  // RESPONSE_TOO_LARGE, ABORTED -> fatal
  ['RESPONSE_TOO_LARGE', failure(ErrorCode.RESPONSE_TOO_LARGE), 'fatal'],
  ['ABORTED', failure(ErrorCode.ABORTED), 'fatal'],
  // Anything else is fatal: an unknown failure is not retried blindly.
  ['unknown code', failure('ECONNRESET'), 'fatal'],
  ['no code', { name: 'Error', message: 'boom' }, 'fatal'],
  [
    'retryable:false on a retryable code',
    failure(ErrorCode.CONNECT, { retryable: false }),
    'fatal',
  ],
];

describe('classifyFailure', () => {
  it.each(table)('%s -> %s', (_label, error, expected) => {
    expect(classifyFailure(error)).toBe(expected);
  });
});

describe('mayHaveBeenBilled', () => {
  const billed: Array<[label: string, error: SerializedError, expected: boolean]> = [
    ['CONNECTION_LOST sent', failure(ErrorCode.CONNECTION_LOST, { sent: true }), true],
    ['CONNECTION_LOST, sent unknown', failure(ErrorCode.CONNECTION_LOST), true],
    ['CONNECTION_LOST not sent', failure(ErrorCode.CONNECTION_LOST, { sent: false }), false],
    ['WORKER_CRASHED', failure(ErrorCode.WORKER_CRASHED), true],
    ['WORKER_CRASHED not sent', failure(ErrorCode.WORKER_CRASHED, { sent: false }), false],
    ['TIMEOUT sent', failure(ErrorCode.TIMEOUT, { sent: true }), true],
    ['TIMEOUT not sent', failure(ErrorCode.TIMEOUT, { sent: false }), false],
    ['TRUNCATED_STREAM', failure(ErrorCode.TRUNCATED_STREAM), true],
    ['BAD_RESPONSE', failure(ErrorCode.BAD_RESPONSE, { status: 200 }), true],
    ['RATE_LIMITED', failure(ErrorCode.RATE_LIMITED, { status: 429 }), false],
    ['HTTP 500', http(500), false],
    ['HTTP 400', http(400), false],
    ['CONNECT', failure(ErrorCode.CONNECT, { sent: false }), false],
    ['AUTH', failure(ErrorCode.AUTH, { status: 401 }), false],
    ['QUOTA', failure(ErrorCode.QUOTA), false],
    ['ABORTED', failure(ErrorCode.ABORTED), false],
    ['no code', { name: 'Error', message: 'boom' }, false],
  ];
  it.each(billed)('%s -> %s', (_label, error, expected) => {
    expect(mayHaveBeenBilled(error)).toBe(expected);
  });

  it('counts every ambiguous verdict as possibly billed', () => {
    for (const [, error, verdict] of table) {
      if (verdict === 'ambiguous') expect(mayHaveBeenBilled(error)).toBe(true);
    }
  });
});

describe('isTransient: would the same request, sent again later, plausibly succeed?', () => {
  const verdicts: Array<[label: string, error: SerializedError, expected: boolean]> = [
    ['RETRIES_EXHAUSTED', failure(ErrorCode.RETRIES_EXHAUSTED, { status: 503 }), true],
    ['RATE_LIMITED', failure(ErrorCode.RATE_LIMITED, { status: 429 }), true],
    ['CONNECT', failure(ErrorCode.CONNECT, { sent: false }), true],
    ['CONNECTION_LOST', failure(ErrorCode.CONNECTION_LOST), true],
    ['TRUNCATED_STREAM', failure(ErrorCode.TRUNCATED_STREAM), true],
    ['BAD_RESPONSE', failure(ErrorCode.BAD_RESPONSE, { status: 200 }), true],
    ['TIMEOUT', failure(ErrorCode.TIMEOUT), true],
    ['WORKER_CRASHED', failure(ErrorCode.WORKER_CRASHED), true],
    ['AUTH: a key can be fixed between runs', failure(ErrorCode.AUTH, { status: 401 }), true],
    ['QUOTA: quota can be bought', failure(ErrorCode.QUOTA), true],
    ['NO_ENDPOINT', failure(ErrorCode.NO_ENDPOINT), true],
    ['ABORTED', failure(ErrorCode.ABORTED), true],
    ['STOPPED', failure(ErrorCode.STOPPED), true],
    ['HTTP 408', http(408), true],
    ['HTTP 409', http(409), true],
    ['HTTP 425', http(425), true],
    ['HTTP 429', http(429), true],
    ['HTTP 500', http(500), true],
    ['HTTP 599', http(599), true],
    ['HTTP 400', http(400), false],
    ['HTTP 404', http(404), false],
    ['HTTP 413', http(413), false],
    ['HTTP 422', http(422), false],
    ['HTTP 503 with x-should-retry:false', http(503, { retryable: false }), false],
    [
      'RATE_LIMITED with x-should-retry:false',
      failure(ErrorCode.RATE_LIMITED, { retryable: false }),
      false,
    ],
    ['RESPONSE_TOO_LARGE', failure(ErrorCode.RESPONSE_TOO_LARGE), false],
    ['INVALID_OPTIONS', failure(ErrorCode.INVALID_OPTIONS), false],
    ['no code', { name: 'Error', message: 'boom' }, false],
  ];
  it.each(verdicts)('%s -> %s', (_label, error, expected) => {
    expect(isTransient(error)).toBe(expected);
  });

  it('agrees with the in-run verdict: whatever a run retries is transient', () => {
    for (const [, error, verdict] of table) {
      if (verdict === 'retry' || verdict === 'ambiguous') expect(isTransient(error)).toBe(true);
    }
  });
});

describe('isRefusedContent: the server refused what the request contains', () => {
  it.each([
    [400, true],
    [413, true],
    [422, true],
    [404, false],
    [429, false],
    [500, false],
  ])('HTTP %i -> %s', (status, expected) => {
    expect(isRefusedContent(http(status))).toBe(expected);
  });

  it('only for HTTP answers, not for a 429 or a give-up carrying a status', () => {
    expect(isRefusedContent(failure(ErrorCode.RATE_LIMITED, { status: 429 }))).toBe(false);
    expect(isRefusedContent(failure(ErrorCode.RETRIES_EXHAUSTED, { status: 400 }))).toBe(false);
  });
});
