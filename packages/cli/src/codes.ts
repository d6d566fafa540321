/**
 * The catalog of every stable code the CLI reports: per input line, per input file, per embed
 * line, per output file, and the codes that end a command (`CliError`, exit-codes.ts). One code means one
 * thing; scripts and tests branch on codes, never on messages. A code used anywhere in the CLI
 * comes from here, so the compiler refuses a typo or a code without a meaning.
 */

/** Every code `parseBatchLine` (batch-line.ts) and the reader can report, with its severity and meaning. */
export const INPUT_ISSUE_CODES = {
  // Framing (reader.ts)
  VOLLEY_INPUT_LINE_TOO_LONG: {
    severity: 'error',
    meaning: 'line over maxLineBytes; skipped unread',
  },
  VOLLEY_INPUT_INVALID_UTF8: { severity: 'error', meaning: 'line is not valid UTF-8' },
  // JSON syntax
  VOLLEY_INPUT_UNEXPECTED_BOM: {
    severity: 'error',
    meaning: 'a byte order mark starts a line other than line 1',
  },
  VOLLEY_INPUT_JSON_TRUNCATED: {
    severity: 'error',
    meaning: 'JSON ends early (unclosed string, object or array)',
  },
  VOLLEY_INPUT_JSON_SINGLE_QUOTE: {
    severity: 'error',
    meaning: 'single-quoted string (a JS/Python-ism)',
  },
  VOLLEY_INPUT_JSON_TRAILING_COMMA: { severity: 'error', meaning: 'comma before } or ]' },
  VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL: {
    severity: 'error',
    meaning: 'NaN, Infinity, undefined, True, False or None',
  },
  VOLLEY_INPUT_JSON_COMMENT: { severity: 'error', meaning: '// or /* comment' },
  VOLLEY_INPUT_JSON_UNQUOTED_KEY: {
    severity: 'error',
    meaning: 'object key without double quotes',
  },
  VOLLEY_INPUT_JSON_CONTROL_CHAR: {
    severity: 'error',
    meaning: 'raw control character inside a string',
  },
  VOLLEY_INPUT_JSON_TRAILING_DATA: {
    severity: 'error',
    meaning: 'more text after the JSON value (two objects on one line?)',
  },
  VOLLEY_INPUT_JSON_SYNTAX: { severity: 'error', meaning: 'other JSON syntax error' },
  // JSON structure (valid JSON that Volley still refuses)
  VOLLEY_INPUT_JSON_TOO_DEEP: {
    severity: 'error',
    meaning: 'objects/arrays nested deeper than 64',
  },
  VOLLEY_INPUT_JSON_UNSAFE_INTEGER: {
    severity: 'error',
    meaning: 'integer literal beyond 2^53 - 1 (would lose precision)',
  },
  VOLLEY_INPUT_JSON_NUMBER_OUT_OF_RANGE: {
    severity: 'error',
    meaning: 'number literal beyond the double range (would become Infinity, sent as null)',
  },
  VOLLEY_INPUT_JSON_DUPLICATE_KEY: {
    severity: 'error',
    meaning: 'the same key twice in one object',
  },
  VOLLEY_INPUT_JSON_FORBIDDEN_KEY: {
    severity: 'error',
    meaning: '__proto__ or constructor key, at any depth',
  },
  // Line shape
  VOLLEY_INPUT_NOT_OBJECT: { severity: 'error', meaning: 'the line is not a JSON object' },
  VOLLEY_INPUT_UNRECOGNIZED_LINE: {
    severity: 'error',
    meaning: 'neither a batch line nor a prompt/messages/input line',
  },
  VOLLEY_INPUT_AMBIGUOUS_LINE: {
    severity: 'error',
    meaning: 'more than one of prompt, messages, input',
  },
  VOLLEY_INPUT_UNKNOWN_FIELD: {
    severity: 'warning',
    meaning: 'unknown top-level field in a batch line; ignored',
  },
  // custom_id
  VOLLEY_INPUT_CUSTOM_ID_MISSING: { severity: 'error', meaning: 'batch line without custom_id' },
  VOLLEY_INPUT_CUSTOM_ID_NOT_STRING: { severity: 'error', meaning: 'custom_id is not a string' },
  VOLLEY_INPUT_CUSTOM_ID_EMPTY: { severity: 'error', meaning: 'custom_id is empty or whitespace' },
  VOLLEY_INPUT_CUSTOM_ID_TOO_LONG: {
    severity: 'error',
    meaning: 'custom_id over 512 UTF-16 code units',
  },
  VOLLEY_INPUT_CUSTOM_ID_UNSAFE: {
    severity: 'error',
    meaning: 'custom_id has control, bidi or lone-surrogate characters',
  },
  VOLLEY_INPUT_CUSTOM_ID_RESERVED: {
    severity: 'error',
    meaning: 'custom_id of the form #line-<n>, reserved for the records of lines without one',
  },
  VOLLEY_INPUT_DUPLICATE_CUSTOM_ID: {
    severity: 'error',
    meaning: 'custom_id already used by an earlier line',
  },
  // Request envelope
  VOLLEY_INPUT_METHOD_INVALID: { severity: 'error', meaning: 'method is missing or not "POST"' },
  VOLLEY_INPUT_URL_ABSOLUTE: {
    severity: 'error',
    meaning: 'url has a scheme or host; hosts come from configuration',
  },
  VOLLEY_INPUT_URL_UNSUPPORTED: {
    severity: 'error',
    meaning: 'url is missing or not one of BATCH_URLS',
  },
  VOLLEY_INPUT_BODY_MISSING: { severity: 'error', meaning: 'batch line without body' },
  VOLLEY_INPUT_BODY_NOT_OBJECT: { severity: 'error', meaning: 'body is not a JSON object' },
  VOLLEY_INPUT_BODY_EMPTY: { severity: 'error', meaning: 'body is {}' },
  // Request body
  VOLLEY_INPUT_MODEL_MISSING: {
    severity: 'error',
    meaning: 'no body.model and no --model default',
  },
  VOLLEY_INPUT_MODEL_INVALID: { severity: 'error', meaning: 'model is not a non-empty string' },
  VOLLEY_INPUT_MODEL_NOT_ALLOWED: {
    severity: 'error',
    meaning: 'model is not in the allowed list',
  },
  VOLLEY_INPUT_MESSAGES_INVALID: {
    severity: 'error',
    meaning: 'messages is not a non-empty array of {role, content}',
  },
  VOLLEY_INPUT_PROMPT_INVALID: {
    severity: 'error',
    meaning: 'prompt is missing, empty or of the wrong type',
  },
  VOLLEY_INPUT_EMBEDDING_INPUT_INVALID: {
    severity: 'error',
    meaning: 'input is missing, empty or of the wrong type',
  },
  VOLLEY_INPUT_RESPONSE_INPUT_INVALID: {
    severity: 'error',
    meaning: 'input of a /v1/responses line is not a non-empty string or array of items',
  },
  VOLLEY_INPUT_STREAM_NOT_ALLOWED: {
    severity: 'error',
    meaning: 'stream is set; Volley decides streaming itself',
  },
  VOLLEY_INPUT_MAX_TOKENS_INVALID: {
    severity: 'error',
    meaning: 'max_tokens/max_completion_tokens/max_output_tokens not a positive integer',
  },
  VOLLEY_INPUT_PROMPT_TOO_LONG: {
    severity: 'error',
    meaning: 'estimated prompt tokens over --max-prompt-tokens',
  },
  VOLLEY_INPUT_SAMPLES_UNSUPPORTED: {
    severity: 'error',
    meaning: '--samples on an embeddings line, or on a line with n > 1 with --select vote or judge',
  },
} as const satisfies Record<string, { severity: 'error' | 'warning'; meaning: string }>;

/** A stable `VOLLEY_INPUT_*` code. */
export type InputIssueCode = keyof typeof INPUT_ISSUE_CODES;

/** Codes of a `FileIssue` (reader.ts): the input cannot be used at all, so nothing is sent. */
export const FILE_ISSUE_CODES = {
  VOLLEY_INPUT_FILE_NOT_FOUND: 'the path does not exist',
  VOLLEY_INPUT_FILE_UNREADABLE: 'the file exists but cannot be opened or read (permissions, I/O)',
  VOLLEY_INPUT_FILE_IS_DIRECTORY: 'the path is a directory',
  VOLLEY_INPUT_FILE_NOT_REGULAR:
    'a FIFO, socket or device; it cannot be re-read on resume (pipe it to "-" instead)',
  VOLLEY_INPUT_FILE_EMPTY: 'the file is empty or holds only blank lines',
  VOLLEY_INPUT_FILE_UTF16: 'UTF-16 or UTF-32 (by BOM or by NUL pattern); JSONL must be UTF-8',
  VOLLEY_INPUT_FILE_GZIP: 'gzip-compressed; decompress it first (or pipe through zcat to "-")',
  VOLLEY_INPUT_FILE_COMPRESSED: 'another compressed or archive format (zip, zstd, xz, bzip2)',
  VOLLEY_INPUT_FILE_BINARY: 'NUL bytes or many control bytes in the first 64 KiB',
  VOLLEY_INPUT_FILE_CR_LINE_ENDINGS:
    'lines end in a bare CR (old Mac style); the file would read as one giant line',
  VOLLEY_INPUT_FILE_STDIN_TTY: '"-" was given but stdin is an interactive terminal',
  VOLLEY_INPUT_FILE_NO_VALID_LINES:
    'not one line is a valid request (found by the preflight pass): the wrong file?',
} as const;

/** Codes of the problems only `volley embed` reports (JSON syntax and framing reuse run's). */
export const EMBED_INPUT_ISSUE_CODES = {
  VOLLEY_INPUT_ID_INVALID:
    '"id" missing, not a non-empty string or integer, too long, or of the reserved form #line-<n>',
  VOLLEY_INPUT_TEXT_INVALID: '"text" missing, empty or not a string',
  VOLLEY_INPUT_NOT_EMBEDDING: 'a batch line for another endpoint than /v1/embeddings',
  VOLLEY_INPUT_MANY_INPUTS: 'a batch line whose "input" holds more than one text',
  VOLLEY_INPUT_MODEL_MISMATCH: 'a batch line naming another model than the run embeds with',
  VOLLEY_INPUT_DUPLICATE_ID: 'an id already used by an earlier line',
} as const;

/** A stable code of a problem only `volley embed` reports. */
export type EmbedInputIssueCode = keyof typeof EMBED_INPUT_ISSUE_CODES;

/** Codes of an `OutputError` (writer.ts). */
export const OUTPUT_ERROR_CODES = {
  VOLLEY_ERR_OUTPUT_WRITE: 'a write, flush or fsync failed (ENOSPC, EPIPE, EIO, ...)',
  VOLLEY_ERR_OUTPUT_OPEN: 'the output cannot be opened (permissions, missing directory, ...)',
  VOLLEY_ERR_OUTPUT_EXISTS:
    'the output is a non-empty file and neither overwrite nor append is set',
  VOLLEY_ERR_OUTPUT_SYMLINK: 'the output path is a symbolic link',
  VOLLEY_ERR_OUTPUT_NOT_FILE: 'the output is a directory, FIFO or socket',
  VOLLEY_ERR_OUTPUT_SAME_AS_INPUT: 'an output path is the input file',
  VOLLEY_ERR_OUTPUT_CONFLICT: 'two output paths are the same file',
  VOLLEY_ERR_OUTPUT_CLOSED: 'write after close',
  VOLLEY_ERR_OUTPUT_INVALID_LINE: 'the line contains a newline and would tear the JSONL framing',
  VOLLEY_ERR_OUTPUT_OPTIONS: 'overwrite and append were both set',
} as const;

/** A stable `VOLLEY_ERR_OUTPUT_*` code. */
export type OutputErrorCode = keyof typeof OUTPUT_ERROR_CODES;

/**
 * Codes of a `CliError` that are not about one input line or one output file: usage,
 * refused resumes, and the few failures of the command itself.
 */
export const CLI_ERROR_CODES = {
  VOLLEY_ERR_USAGE: 'a flag or argument is wrong, or two flags conflict',
  VOLLEY_ERR_INVALID_OPTIONS: 'an option value is out of range (the same code as @volley/core)',
  VOLLEY_ERR_SIM_OPTION: 'a `volley sim` option the simulator refuses',
  VOLLEY_ERR_INTERNAL: 'an unexpected error, not a coded failure; a bug to report',
  VOLLEY_ERR_INPUT_READ: 'reading the input failed mid-way (EIO, EACCES, EISDIR, ...)',
  VOLLEY_INPUT_STRICT: '--strict: the input has bad lines, so nothing was sent',
  VOLLEY_ERR_OUTPUT_LOCKED: "another live run holds the output's lock",
  VOLLEY_ERR_PRICES_INVALID: 'the --prices file cannot be read or has a bad entry',
  VOLLEY_ERR_METRICS_PORT: 'the --metrics-port cannot be listened on',
  VOLLEY_ERR_RESUME_NO_STATE: '--resume, but the output has no state file to resume from',
  VOLLEY_ERR_RESUME_STATE_INVALID: 'the state file is not one this version wrote',
  VOLLEY_ERR_RESUME_CORRUPT: 'an output file does not match its state (torn or edited)',
  VOLLEY_ERR_RESUME_IMPOSSIBLE: 'the input cannot be read again (stdin), so it cannot be resumed',
  VOLLEY_ERR_RESUME_CHANGED_LINES: 'input lines changed since their results were written',
  VOLLEY_ERR_RESUME_CONFIG_CHANGED:
    'the configuration (endpoints, model, line rules, sampling) changed since the run began',
  VOLLEY_ERR_RESUME_WRONG_COMMAND: 'the state was written by the other command (run vs embed)',
  VOLLEY_ERR_RESUME_FORMAT_CHANGED: 'embed: the vector format differs from the one the run wrote',
  VOLLEY_ERR_RESUME_ERRORS_PATH: 'the run wrote its errors to another file than -e names',
} as const;

/** Every code a `CliError` may carry. */
export type CliErrorCode =
  | keyof typeof CLI_ERROR_CODES
  | keyof typeof OUTPUT_ERROR_CODES
  | keyof typeof FILE_ISSUE_CODES;
