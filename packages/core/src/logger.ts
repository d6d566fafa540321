/**
 * pino logging with secrets kept out. Two layers: pino's `redact` removes known secret paths from
 * structured records, and `scrubSecrets` removes registered secret values from any free text
 * (messages, stacks, server error bodies that echo a key).
 */

import type { Logger, LoggerOptions } from 'pino';
import { pino } from 'pino';

export type { Logger } from 'pino';

const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  'endpoints[*].apiKey',
  'authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
];

const secrets = new Set<string>();

/**
 * The forms a secret takes inside base64 text (a server echoing a header block base64-encoded):
 * for each of the three byte offsets it can start at, the characters that depend on its bytes
 * alone. Any base64 of a text holding the secret holds one of them.
 */
function base64Forms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const first = Math.ceil((offset * 8) / 6);
    const last = Math.floor(((offset + bytes.length) * 8) / 6);
    const form = encoded.slice(first, last);
    forms.push(form, form.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return forms;
}

/** Registers a value that must never be printed. Short values are ignored (they would match everywhere). */
export function registerSecret(value: string | undefined): void {
  if (value === undefined || value.length < 8 || secrets.has(value)) return;
  secrets.add(value);
  for (const form of base64Forms(value)) secrets.add(form);
}

/** Headers whose values are credentials (a caller's own `Authorization`, Azure's `api-key`, ...). */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'api-key',
  'x-api-key',
]);

/**
 * Registers the credentials among request headers as secrets: the whole value and, for
 * `Bearer`/`Basic` values, the token alone. Every thread that sends or logs them calls it.
 */
export function registerHeaderSecrets(headers: Record<string, string> | undefined): void {
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!CREDENTIAL_HEADERS.has(name.toLowerCase())) continue;
    registerSecret(value);
    registerSecret(value.replace(/^\s*(?:Bearer|Basic)\s+/i, ''));
  }
}

/** Replaces every registered secret in `text` with `[REDACTED]`. */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const secret of secrets)
    if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
  return out;
}

export interface CreateLoggerOptions {
  level?: LoggerOptions['level'];
  name?: string;
  /**
   * Defaults to stderr (stdout carries data only), written synchronously: Volley logs only rare,
   * consequential events, and those must not be lost when the process exits right after.
   */
  destination?: NodeJS.WritableStream | pino.DestinationStream;
}

/** A pino logger writing JSON lines to stderr with secrets redacted. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'volley',
      level: options.level ?? process.env.VOLLEY_LOG_LEVEL ?? 'warn',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((arg) => (typeof arg === 'string' ? scrubSecrets(arg) : arg));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
      serializers: {
        err: (error: unknown) => {
          const serialized = pino.stdSerializers.err(error as Error);
          serialized.message = scrubSecrets(serialized.message);
          if (serialized.stack) serialized.stack = scrubSecrets(serialized.stack);
          return serialized;
        },
      },
    },
    (options.destination ?? pino.destination({ dest: 2, sync: true })) as pino.DestinationStream,
  );
}
