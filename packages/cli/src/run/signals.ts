/**
 * SIGINT and SIGTERM for a run: the first asks for a drain, the second for an abort, a third exits
 * at once (the journal's torn-tail repair makes even that safe to resume). The exit code follows
 * the first signal: 130 for SIGINT, 143 for SIGTERM.
 *
 * The gate also watches stdout and stderr: a reader that goes away (`volley run … | head -1`)
 * makes writes fail with EPIPE, which would otherwise crash the process with the lock left and
 * the state unsaved. The pass is told once and stops like on a first signal (exit 3).
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
  /** Routes the first closed stdout or stderr (EPIPE) to `handler` from now on. */
  setClosedHandler(handler: (stream: 'stdout' | 'stderr') => void): void;
  /** The first of stdout and stderr found closed by its reader, if any. */
  readonly closed: 'stdout' | 'stderr' | undefined;
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
  watchStandardStreams();
  return {
    get first() {
      return first;
    },
    get closed() {
      return closedStream;
    },
    setClosedHandler(next) {
      closedHandler = next;
    },
    get exitCode() {
      return first === undefined ? undefined : exitCodeOf(first);
    },
    setHandler(next) {
      handler = next;
    },
    dispose() {
      closedHandler = () => undefined;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

type StandardStream = 'stdout' | 'stderr';
let watching = false;
let closedStream: StandardStream | undefined;
let closedHandler: (stream: StandardStream) => void = () => undefined;

/**
 * Once per process, and for its whole life: the summary and the exit come after the gate is
 * disposed, and a write to a pipe nobody reads is not worth a crash.
 */
function watchStandardStreams(): void {
  if (watching) return;
  watching = true;
  for (const stream of ['stdout', 'stderr'] as const) {
    process[stream].on('error', () => {
      if (closedStream !== undefined) return;
      closedStream = stream;
      closedHandler(stream);
    });
  }
}
