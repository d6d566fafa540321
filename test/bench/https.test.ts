/**
 * `volley bench` over HTTPS (cloud APIs, servers behind a TLS proxy): the shards' own HTTP/1.1
 * client connects with TLS, verifies the certificate against Node's CA store (so
 * NODE_EXTRA_CA_CERTS adds a private CA, as it does for every Node client) and refuses a server it
 * cannot verify. The fixture is a self-signed certificate for 127.0.0.1 (fixtures/tls, valid to
 * 2126), used only here.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers.js';
import { writeChatStream } from './helpers.js';

const TLS = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tls');
const CERT = join(TLS, 'cert.pem');

async function httpsServer() {
  const server = createServer(
    { key: readFileSync(join(TLS, 'key.pem')), cert: readFileSync(CERT) },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        writeChatStream(res, ['a', ' b', ' c'], {
          prompt_tokens: 4,
          completion_tokens: 3,
          total_tokens: 7,
        });
      });
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/v1`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const ARGS = [
  '--model',
  'm',
  '--random-input-len',
  '8',
  '--random-output-len',
  '3',
  '--num-prompts',
  '20',
  '--max-concurrency',
  '4',
  '--progress',
  'none',
  '--json',
];

describe('volley bench over HTTPS', () => {
  it('streams from a server whose CA is trusted, and refuses one it cannot verify', async () => {
    const server = await httpsServer();
    try {
      const trusted = await runCli(['bench', '--base-url', server.url, ...ARGS], {
        NODE_EXTRA_CA_CERTS: CERT,
      });
      expect(trusted.code, trusted.stderr).toBe(0);
      const r = JSON.parse(trusted.stdout) as {
        completed: number;
        failed: number;
        total_output_tokens: number;
        median_ttft_ms: number | null;
      };
      expect(r.completed).toBe(20);
      expect(r.failed).toBe(0);
      expect(r.total_output_tokens).toBe(60);
      expect(r.median_ttft_ms).toBeGreaterThan(0);

      const untrusted = await runCli(['bench', '--base-url', server.url, ...ARGS]);
      const u = JSON.parse(untrusted.stdout) as {
        completed: number;
        errors: { by_class: Record<string, number> };
      };
      expect(u.completed).toBe(0);
      expect(u.errors.by_class.transport_error).toBe(20);
    } finally {
      await server.close();
    }
  }, 60_000);
});
