// The float cells' simulator: `volley sim` (the same `createSimulator`, same defaults) plus two
// things the CLI does not offer, both for these cells only:
//
// --ignore-encoding-format  answer float JSON whatever `encoding_format` asks for, as some real
//     servers do. Volley always asks for base64 (it has no option to ask for floats), so this is
//     how it gets float responses; the peers ask for `encoding_format: 'float'` and get the same
//     bytes.
// --flatten-cache  the simulator builds each float vector's JSON with `+=` and caches that string
//     as built: a rope of ~2 pieces per dimension. Every response containing it then pays for
//     walking the rope when the body is measured and written (Buffer.byteLength flattens the whole
//     response): ~70 ms per 256 x 3072 response against ~10 ms once the cached strings are flat,
//     which made the server, not the clients, the bottleneck of every float cell. This wraps the
//     cache so each entry is flattened in place the first time it is served (an artifact of the
//     simulator, not of real servers; remove once @volley/sim flattens its cache itself).
//
// Plain JavaScript, run by plain `node` like `volley sim`, so the server carries no loader.
// Arguments mirror `volley sim`: `sim --port 0 [--latency-ms N] [--ignore-encoding-format] [--flatten-cache]`.
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

if (argv.includes('--flatten-cache')) {
  // The same module instance the simulator imports (dist/embeddings.js next to dist/index.js).
  const { EmbeddingCache } = await import(
    new URL('./embeddings.js', import.meta.resolve('@volley/sim')).href
  );
  const original = EmbeddingCache.prototype.encoded;
  const flattened = new Set();
  EmbeddingCache.prototype.encoded = function encoded(input, model, dimensions, encoding) {
    const encodedValue = original.call(this, input, model, dimensions, encoding);
    const key = `${encoding}\u0000${dimensions}\u0000${model}\u0000${input}`;
    if (!flattened.has(key)) {
      flattened.add(key);
      // V8 flattens a cons string in place when its length in bytes is computed.
      Buffer.byteLength(encodedValue);
    }
    return encodedValue;
  };
}

const sim = await createSimulator(options);
// stdout carries the URL only, as `volley sim` does.
process.stdout.write(`${sim.url}\n`);
await new Promise((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
await sim.close();
