// The float cells' simulator: `volley sim` (the same `createSimulator`, same defaults) plus one
// thing the CLI does not offer, for these cells only:
//
// --ignore-encoding-format  answer float JSON whatever `encoding_format` asks for, as some real
//     servers do. Volley always asks for base64 (it has no option to ask for floats), so this is
//     how it gets float responses; the peers ask for `encoding_format: 'float'` and get the same
//     bytes.
//
// Plain JavaScript, run by plain `node` like `volley sim`, so the server carries no loader.
// Arguments mirror `volley sim`: `sim --port 0 [--latency-ms N] [--ignore-encoding-format]`.
import { createSimulator } from '@volley/sim';

const argv = process.argv.slice(2);
const value = (flag) => {
  const at = argv.indexOf(flag);
  return at === -1 ? undefined : argv[at + 1];
};
const options = { port: Number(value('--port') ?? 0), host: '127.0.0.1' };
const latencyMs = Number(value('--latency-ms') ?? 0);
if (latencyMs > 0) options.latency = { headersMs: latencyMs };
if (argv.includes('--ignore-encoding-format')) options.ignoreEncodingFormat = true;

const sim = await createSimulator(options);
// stdout carries the URL only, as `volley sim` does.
process.stdout.write(`${sim.url}\n`);
await new Promise((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
await sim.close();
