/**
 * A local resource error at connect (EMFILE, ENFILE, ENOBUFS, EADDRNOTAVAIL) is this machine
 * running out, not a lost connection: nothing was sent, so it is retried and never counted as
 * billed. Regression: `ulimit -n 256` with `-c 300` claimed 4,529 extra billed calls.
 * (test/cli-emfile.test.ts runs the real thing under `ulimit -n`.)
 */
import {
  classifyFailure,
  ErrorCode,
  isEndpointFault,
  isUnreachable,
  mayHaveBeenBilled,
} from '@volley/core';
import { describe, expect, it } from 'vitest';
import { transportFailure } from '../src/failures.js';

/** The shape of Node's error for a failed connect(2) (net's exceptionWithHostPort). */
function osError(code: string, syscall: string): Error {
  return Object.assign(
    new Error(`${syscall} ${code} 127.0.0.1:8000 - Local (undefined:undefined)`),
    {
      code,
      errno: -1,
      syscall,
    },
  );
}

describe('transportFailure of a local resource error', () => {
  it.each([
    [
      'EMFILE',
      'too many open files on this machine (EMFILE): lower --concurrency or raise ulimit -n',
    ],
    ['ENFILE', 'too many open files on this machine, system-wide (ENFILE)'],
    ['ENOBUFS', 'out of socket buffers on this machine (ENOBUFS)'],
    ['EADDRNOTAVAIL', 'no free local port on this machine (EADDRNOTAVAIL)'],
  ])(
    '%s at connect: not sent, retried, never billed, endpoint not marked down nor its circuit opened',
    (code, phrase) => {
      const failure = transportFailure(osError(code, 'connect'), 'headers');
      expect(failure).toMatchObject({ code: ErrorCode.CONNECTION_LOST, sent: false });
      expect(failure.message).toContain(phrase);
      expect(classifyFailure(failure)).toBe('retry');
      expect(mayHaveBeenBilled(failure)).toBe(false);
      expect(isUnreachable(failure)).toBe(false);
      // Nor counted by its circuit breaker: this machine ran out, the endpoint is fine.
      expect(isEndpointFault(failure)).toBe(false);
    },
  );

  it('ENOBUFS on a connected socket write stays ambiguous: the request may have left', () => {
    const failure = transportFailure(osError('ENOBUFS', 'write'), 'body');
    expect(failure).toMatchObject({ code: ErrorCode.CONNECTION_LOST, sent: true });
    expect(mayHaveBeenBilled(failure)).toBe(true);
    expect(isEndpointFault(failure)).toBe(true);
  });
});
