/** Exit codes, as documented in the README and shared by every command. */
export const ExitCode = {
  /** Every line succeeded. */
  OK: 0,
  /** The run finished, but some lines failed (see the errors file). */
  SOME_FAILED: 1,
  /** Usage or input error: nothing was sent. */
  USAGE: 2,
  /** Stopped: auth, quota or every endpoint down. The rest is pending. */
  STOPPED: 3,
  /** SIGINT: drained and stopped; resumable. */
  INTERRUPTED: 130,
  /** SIGTERM: drained and stopped; resumable. */
  TERMINATED: 143,
} as const;

/** An error that ends a command with a given exit code and a one-line message. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
