/**
 * The start-up warning for rate limits a run can never meet: with `--rpm 1`, 1000 lines and
 * `--timeout-ms 60000`, most lines time out, because a line's deadline runs while it waits for its
 * turn under the limit. Only a warning: the lines keep their usual fate (timed out, retryable).
 *
 * The arithmetic is a lower bound on the wait, so the warning is no false alarm: the lines in
 * flight at once (`-c`, or fewer lines) share the limit; the last of them waits
 * `inFlight / linesPerMinute` minutes for its first request, even with every request answering
 * instantly and, for `--tpm`, one token a request. When that wait is past the deadline, lines
 * time out (measured: --rpm 60, -c 20, 20 lines, --timeout-ms 5000: 15 timed out).
 */

/** What the warning needs to know about a run. */
export interface PaceFacts {
  /** Lines to send, when known (not for standard input). */
  lines: number | undefined;
  concurrency: number;
  /** `--rpm`, per endpoint. */
  rpm: number | undefined;
  /** `--tpm`, per endpoint. */
  tpm: number | undefined;
  /** Endpoints sharing the work (each has its own limit). */
  endpoints: number;
  /** Requests each line sends (`--samples`). */
  requestsPerLine: number;
  /** A line's deadline, across retries. */
  timeoutMs: number;
}

const MS_PER_MINUTE = 60_000;

/** A duration as people say it: seconds under a minute, minutes above. */
function duration(ms: number): string {
  const [value, unit] = ms < MS_PER_MINUTE ? [ms / 1000, 's'] : [ms / MS_PER_MINUTE, 'min'];
  return `${Number.isInteger(value) ? value : Number(value.toPrecision(3))} ${unit}`;
}

/**
 * The warning's text when `--rpm` or `--tpm` leaves lines no chance to finish within their
 * deadline, else `undefined`.
 *
 * @example
 * paceWarning({ lines: 1000, concurrency: 64, rpm: 1, tpm: undefined, endpoints: 1,
 *   requestsPerLine: 1, timeoutMs: 60_000 }); // "--rpm 1 (requests a minute) with 64 lines ..."
 */
export function paceWarning(facts: PaceFacts): string | undefined {
  const inFlight = Math.min(facts.concurrency, facts.lines ?? facts.concurrency);
  if (inFlight <= 0) return undefined;
  const limits: Array<{ flag: string; value: number; per: string }> = [];
  if (facts.rpm !== undefined)
    limits.push({ flag: '--rpm', value: facts.rpm, per: 'requests a minute' });
  // At least one token a request: a bound no line can beat.
  if (facts.tpm !== undefined)
    limits.push({ flag: '--tpm', value: facts.tpm, per: 'tokens a minute, 1 or more a request' });
  for (const limit of limits) {
    const linesPerMinute = (limit.value * facts.endpoints) / facts.requestsPerLine;
    const waitMs = (inFlight / linesPerMinute) * MS_PER_MINUTE;
    if (waitMs <= facts.timeoutMs) continue;
    const inTime = Math.floor((linesPerMinute * facts.timeoutMs) / MS_PER_MINUTE);
    const endpoints = facts.endpoints === 1 ? '' : ` over ${facts.endpoints} endpoints`;
    const perLine =
      facts.requestsPerLine === 1 ? '' : ` (${facts.requestsPerLine} requests a line)`;
    const lines = facts.lines === undefined ? '' : `, of ${facts.lines} lines`;
    const fix =
      inTime >= 1
        ? `lower -c to ${inTime} or raise --timeout-ms to ${Math.ceil(waitMs)}`
        : `raise --timeout-ms to ${Math.ceil(waitMs)}`;
    return (
      `${limit.flag} ${limit.value} (${limit.per}${endpoints})${perLine} ` +
      `with ${inFlight} lines in flight at once (-c ${facts.concurrency}${lines}): ` +
      `the last waits up to ${duration(waitMs)} for its turn, past its --timeout-ms of ${duration(facts.timeoutMs)}; ` +
      `about ${inFlight - Math.min(inTime, inFlight)} of every ${inFlight} will time out. To finish them, ${fix}`
    );
  }
  return undefined;
}
