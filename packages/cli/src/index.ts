export type { RunCommandOptions } from './commands/run.js';
export { errorRecord, runCommand, successRecord } from './commands/run.js';
export { CliError, ExitCode } from './exit-codes.js';
