/**
 * SIGINT and SIGTERM for a run: the first asks for a drain, the second for an abort, a third exits
 * at once (the journal's torn-tail repair makes even that safe to resume). The exit code follows
 * the first signal: 130 for SIGINT, 143 for SIGTERM.
 */

import { ExitCode } from '../exit-codes.js';

/** A received signal. */
export type StopSignal = 'SIGINT' | 'SIGTERM';

/** See {@link createSignalGate}. */
export interface SignalGate {
  /** The first signal received, if any. */
  readonly first: StopSignal | undefined;
  /** Routes signals to `handler` from now on (`count` is 1 for the first, 2 for the second). */
  setHandler(handler: (signal: StopSignal, count: number) => void): void;
  /** The exit code the first signal calls for. */
  readonly exitCode: number | undefined;
  dispose(): void;
}

/**
 * Installs SIGINT/SIGTERM handlers until `dispose()`.
 *
 * @example
 * const signals = createSignalGate();
 * signals.setHandler((signal, count) => (count === 1 ? drain() : abort()));
 */
export function createSignalGate(): SignalGate {
  let first: StopSignal | undefined;
  let count = 0;
  let handler: (signal: StopSignal, count: number) => void = () => undefined;
  const exitCodeOf = (signal: StopSignal): number =>
    signal === 'SIGINT' ? ExitCode.INTERRUPTED : ExitCode.TERMINATED;
  const onSignal = (signal: StopSignal): void => {
    first ??= signal;
    count++;
    if (count >= 3) {
      process.stderr.write(`volley: ${signal} a third time: exiting now\n`);
      process.exit(exitCodeOf(first));
    }
    handler(signal, count);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get first() {
      return first;
    },
    get exitCode() {
      return first === undefined ? undefined : exitCodeOf(first);
    },
    setHandler(next) {
      handler = next;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
