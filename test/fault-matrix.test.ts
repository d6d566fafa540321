/**
 * Every fault the simulator can inject, each against one call, in both modes: what Volley does
 * with it is the outcome table's promise, checked on the wire. The fault hits the first attempt
 * only; the simulator's log says how many attempts reached the server.
 *
 *   recover  retried, and the complete answer returned (never the partial one)
 *   fatal    failed with the server's status, sent exactly once
 *   stop     the endpoint is taken out of rotation (auth, quota): VOLLEY_ERR_NO_ENDPOINT
 *   cap      over the response size cap: failed, not retried
 *   pass     slow but within the timeouts: answered on the first attempt
 */
import type { Fault, FaultKind } from '@volley/sim';
import { createSimulator, FAULT_KINDS, simulatedChatContent } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { createVolley, ErrorCode } from 'volley';

type Expectation = 'recover' | 'fatal' | 'stop' | 'cap' | 'pass';

/** A record over every kind: adding a fault kind without an expectation fails to compile. */
const EXPECTED: Record<FaultKind, Expectation> = {
  'status-429': 'recover',
  'status-500': 'recover',
  'status-502': 'recover',
  'status-503': 'recover',
  'status-504': 'recover',
  'status-529': 'recover',
  'status-400-context-length': 'fatal',
  'status-401': 'stop',
  'status-403': 'stop',
  'status-404': 'fatal',
  'status-422': 'fatal',
  'insufficient-quota': 'stop',
  'should-not-retry': 'fatal',
  'reset-before-headers': 'recover',
  'reset-mid-body': 'recover',
  'reset-mid-stream': 'recover',
  'truncate-stream': 'recover',
  'stall-stream': 'recover',
  'slow-headers': 'pass',
  'slow-body': 'pass',
  'html-200': 'recover',
  'empty-200': 'recover',
  'error-200': 'recover',
  'bad-json-event': 'recover',
  'huge-sse-line': 'cap',
  redirect: 'fatal',
};

const MODEL = 'volley-sim-1';
const cases = FAULT_KINDS.flatMap((kind) => [false, true].map((stream) => [kind, stream] as const));

describe.each(['async', 'threads'] as const)('%s mode', (mode) => {
  it.each(cases)('%s (stream: %s)', async (kind, stream) => {
    let fired = false;
    const fault: Fault = { kind, retryAfterMs: 50, slowMs: 200, keepaliveMs: 50 };
    const sim = await createSimulator({
      faultFor: () => {
        if (fired) return undefined;
        fired = true;
        return fault;
      },
    });
    const volley = await createVolley({
      mode,
      endpoints: [{ baseUrl: sim.url }],
      model: MODEL,
      idleTimeoutMs: 1_000,
      maxResponseBytes: 2 * 1024 * 1024,
      backoff: { baseDelayMs: 10, maxDelayMs: 50 },
      logger: false,
    });
    const body = { model: MODEL, messages: [{ role: 'user' as const, content: `fault ${kind}` }] };
    try {
      const outcome = await volley.chat(body, { stream }).then(
        (reply) => ({ reply, error: undefined }),
        (error: { code?: string; status?: number; cause?: { code?: string } }) => ({
          reply: undefined,
          error,
        }),
      );
      const attempts = sim.requests.length;
      switch (EXPECTED[kind]) {
        case 'recover':
          expect(outcome.error).toBeUndefined();
          expect(outcome.reply?.choices[0]?.message.content).toBe(
            simulatedChatContent(body).content,
          );
          expect(attempts).toBe(2);
          break;
        case 'pass':
          expect(outcome.reply?.choices[0]?.message.content).toBe(
            simulatedChatContent(body).content,
          );
          expect(attempts).toBe(1);
          break;
        case 'fatal':
          expect(outcome.error?.code).toBe(ErrorCode.HTTP);
          expect(outcome.error?.status).toBeGreaterThanOrEqual(300);
          expect(attempts).toBe(1);
          break;
        case 'stop':
          expect(outcome.error?.code).toBe(ErrorCode.NO_ENDPOINT);
          expect([ErrorCode.AUTH, ErrorCode.QUOTA]).toContain(outcome.error?.cause?.code);
          expect(attempts).toBe(1);
          break;
        case 'cap':
          expect(outcome.error?.code).toBe(ErrorCode.RESPONSE_TOO_LARGE);
          expect(attempts).toBe(1);
          break;
      }
    } finally {
      await volley.close();
      await sim.close();
    }
  });

  it('rides out a 3 s outage of 503s without failing a call', async () => {
    const sim = await createSimulator({ faults: { outageMs: 3_000 }, logBodies: false });
    const volley = await createVolley({
      mode,
      endpoints: [{ baseUrl: sim.url }],
      model: MODEL,
      concurrency: 16,
      logger: false,
    });
    const opened: number[] = [];
    volley.on('endpointUnhealthy', ({ openMs }) => opened.push(openMs));
    try {
      const results = await volley.map(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => volley.chat({ messages: [{ role: 'user', content: `outage ${i}` }] }),
      );
      expect(results.every((result) => result.ok)).toBe(true);
      expect(opened.length).toBeGreaterThan(0);
      // The circuit kept the outage from burning through retries: far fewer 503s than calls × attempts.
      expect(sim.stats().byStatus[503] ?? 0).toBeLessThan(100);
    } finally {
      await volley.close();
      await sim.close();
    }
  }, 30_000);
});
