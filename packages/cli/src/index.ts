export { runCommand, successRecord, errorRecord } from './commands/run.js';
export type { RunCommandOptions } from './commands/run.js';
export { ExitCode, CliError } from './exit-codes.js';
