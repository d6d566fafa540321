import { describe, expect, it } from 'vitest';
import type { SerializedError } from '../src/index.js';
import {
  deserializeError,
  ErrorCode,
  isVolleyError,
  serializeError,
  VolleyError,
} from '../src/index.js';

function fullError(): VolleyError {
  const root = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  const middle = new VolleyError(ErrorCode.CONNECTION_LOST, 'connection lost after send', {
    cause: root,
    sent: true,
    endpoint: 1,
  });
  return new VolleyError(ErrorCode.RATE_LIMITED, 'rate limited', {
    cause: middle,
    status: 429,
    retryAfterMs: 1_500,
    retryable: true,
    sent: false,
    errorType: 'rate_limit_exceeded',
    endpoint: 2,
    attempts: 4,
    transient: true,
  });
}

function expectSameVolleyFields(actual: unknown, expected: VolleyError): void {
  expect(actual).toBeInstanceOf(VolleyError);
  const error = actual as VolleyError;
  expect(error.code).toBe(expected.code);
  expect(error.message).toBe(expected.message);
  expect(error.status).toBe(expected.status);
  expect(error.retryAfterMs).toBe(expected.retryAfterMs);
  expect(error.retryable).toBe(expected.retryable);
  expect(error.sent).toBe(expected.sent);
  expect(error.errorType).toBe(expected.errorType);
  expect(error.endpoint).toBe(expected.endpoint);
  expect(error.attempts).toBe(expected.attempts);
  expect(error.transient).toBe(expected.transient);
  expect(error.stack).toBe(expected.stack);
}

function expectRoundTrip(copy: Error, original: VolleyError): void {
  expectSameVolleyFields(copy, original);
  const middle = original.cause as VolleyError;
  expectSameVolleyFields(copy.cause, middle);
  const root = (copy.cause as Error).cause as Error & { code?: unknown };
  expect(root).toBeInstanceOf(Error);
  expect(isVolleyError(root)).toBe(false);
  expect(root.message).toBe('socket hang up');
  expect(root.code).toBe('ECONNRESET');
}

describe('VolleyError', () => {
  it('carries code, details and cause', () => {
    const cause = new Error('root');
    const error = new VolleyError(ErrorCode.HTTP, 'bad gateway', {
      cause,
      status: 502,
      retryAfterMs: 10,
      retryable: true,
      sent: true,
      errorType: 'server_error',
      endpoint: 3,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('VolleyError');
    expect(error.code).toBe('VOLLEY_ERR_HTTP');
    expect(error.cause).toBe(cause);
    expect(error.status).toBe(502);
    expect(error.retryAfterMs).toBe(10);
    expect(error.retryable).toBe(true);
    expect(error.sent).toBe(true);
    expect(error.errorType).toBe('server_error');
    expect(error.endpoint).toBe(3);
    expect(typeof error.stack).toBe('string');
  });

  it('leaves details undefined and has no own cause when none is given', () => {
    const error = new VolleyError(ErrorCode.STOPPED, 'stopped');
    expect(error.status).toBeUndefined();
    expect(error.retryAfterMs).toBeUndefined();
    expect(error.retryable).toBeUndefined();
    expect(error.sent).toBeUndefined();
    expect(error.errorType).toBeUndefined();
    expect(error.endpoint).toBeUndefined();
    expect(Object.hasOwn(error, 'cause')).toBe(false);
  });

  it('withDetails() returns a copy with more details, keeping code, message, cause and stack', () => {
    const original = fullError();
    const copy = original.withDetails({ attempts: 7, transient: false });
    expect(copy).not.toBe(original);
    expect(copy.attempts).toBe(7);
    expect(copy.transient).toBe(false);
    expect(copy.cause).toBe(original.cause);
    expect(copy.stack).toBe(original.stack);
    expect(copy.status).toBe(429);
    expect(original.attempts).toBe(4);
  });

  it('has stable, prefixed, unique codes', () => {
    const codes = Object.values(ErrorCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^VOLLEY_ERR_[A-Z_]+$/);
  });

  it('answers instanceof through the global brand, so another copy of the package is recognised', () => {
    class ForeignVolleyError extends Error {
      readonly code = 'VOLLEY_ERR_HTTP';
      get [Symbol.for('volley.error')](): true {
        return true;
      }
    }
    expect(new ForeignVolleyError('x')).toBeInstanceOf(VolleyError);
    expect(isVolleyError(new ForeignVolleyError('x'))).toBe(true);
  });

  it('does not claim plain errors, look-alikes without the brand, or non-objects', () => {
    expect(new Error('x')).not.toBeInstanceOf(VolleyError);
    expect(
      isVolleyError(
        Object.assign(new Error('x'), { code: 'VOLLEY_ERR_HTTP', name: 'VolleyError' }),
      ),
    ).toBe(false);
    expect(isVolleyError({ [Symbol.for('volley.error')]: 'yes' })).toBe(false);
    for (const value of [null, undefined, 'VOLLEY_ERR_HTTP', 42])
      expect(isVolleyError(value)).toBe(false);
  });

  it('loses its brand in a bare structured clone (which is why serializeError exists)', () => {
    const clone = structuredClone(new VolleyError(ErrorCode.HTTP, 'x', { status: 500 }));
    expect(isVolleyError(clone)).toBe(false);
  });
});

describe('serializeError / deserializeError', () => {
  it('serializes every field and the nested cause into plain data', () => {
    const original = fullError();
    const data = serializeError(original);
    expect(data).toMatchObject({
      name: 'VolleyError',
      message: 'rate limited',
      code: 'VOLLEY_ERR_RATE_LIMITED',
      status: 429,
      retryAfterMs: 1_500,
      retryable: true,
      sent: false,
      errorType: 'rate_limit_exceeded',
      endpoint: 2,
      attempts: 4,
      transient: true,
      cause: {
        name: 'VolleyError',
        code: 'VOLLEY_ERR_CONNECTION_LOST',
        sent: true,
        endpoint: 1,
        cause: { name: 'Error', message: 'socket hang up', code: 'ECONNRESET' },
      },
    });
    expect(data.stack).toBe(original.stack);
    expect(JSON.parse(JSON.stringify(data))).toEqual(data);
  });

  it('round-trips a VolleyError with its details and nested cause', () => {
    const original = fullError();
    expectRoundTrip(deserializeError(serializeError(original)), original);
  });

  it('round-trips through structured clone (the thread hop)', () => {
    const original = fullError();
    expectRoundTrip(deserializeError(structuredClone(serializeError(original))), original);
  });

  it('round-trips through JSON (error records)', () => {
    const original = fullError();
    const data = JSON.parse(JSON.stringify(serializeError(original))) as SerializedError;
    expectRoundTrip(deserializeError(data), original);
  });

  it('keeps false and 0 details (not dropped as falsy)', () => {
    const original = new VolleyError(ErrorCode.HTTP, 'x', {
      retryable: false,
      sent: false,
      retryAfterMs: 0,
      endpoint: 0,
    });
    const copy = deserializeError(serializeError(original)) as VolleyError;
    expect(copy.retryable).toBe(false);
    expect(copy.sent).toBe(false);
    expect(copy.retryAfterMs).toBe(0);
    expect(copy.endpoint).toBe(0);
  });

  it('keeps a plain error name, message, string code and stack', () => {
    const original = Object.assign(new TypeError('bad thing'), { code: 'ERR_BAD' });
    const copy = deserializeError(structuredClone(serializeError(original))) as Error & {
      code?: unknown;
    };
    expect(isVolleyError(copy)).toBe(false);
    expect(copy.name).toBe('TypeError');
    expect(copy.message).toBe('bad thing');
    expect(copy.code).toBe('ERR_BAD');
    expect(copy.stack).toBe(original.stack);
  });

  it('drops a non-string code', () => {
    const data = serializeError(Object.assign(new Error('x'), { code: 42 }));
    expect(data.code).toBeUndefined();
  });

  it('serializes non-Error values without throwing', () => {
    expect(serializeError('plain string')).toEqual({ name: 'Error', message: 'plain string' });
    expect(serializeError(42)).toEqual({ name: 'Error', message: '42' });
    expect(serializeError(undefined)).toEqual({ name: 'Error', message: 'undefined' });
    expect(serializeError(null)).toEqual({ name: 'Error', message: 'null' });
    expect(serializeError({ a: 1 })).toEqual({ name: 'Error', message: '[object Object]' });
    expect(serializeError(Object.create(null))).toEqual({
      name: 'Error',
      message: 'non-error thrown',
    });
    const hostile = {
      toString() {
        throw new Error('no');
      },
    };
    expect(serializeError(hostile).message).toBe('non-error thrown');
  });

  it('serializes a non-Error cause', () => {
    const data = serializeError(new Error('outer', { cause: 'inner reason' }));
    expect(data.cause).toEqual({ name: 'Error', message: 'inner reason' });
    expect((deserializeError(data).cause as Error).message).toBe('inner reason');
  });

  it('bounds the cause chain, so a cycle does not recurse forever', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as Error & { cause: unknown }).cause = b;
    let depth = 0;
    for (
      let node: SerializedError | undefined = serializeError(a);
      node !== undefined;
      node = node.cause
    )
      depth++;
    expect(depth).toBeGreaterThan(1);
    expect(depth).toBeLessThanOrEqual(10);
  });

  it('deserializes an unknown code as a plain error that keeps the code', () => {
    const copy = deserializeError({
      name: 'AbortError',
      message: 'aborted',
      code: 'ABORT_ERR',
    }) as Error & {
      code?: unknown;
    };
    expect(isVolleyError(copy)).toBe(false);
    expect(copy.name).toBe('AbortError');
    expect(copy.code).toBe('ABORT_ERR');
  });
});
