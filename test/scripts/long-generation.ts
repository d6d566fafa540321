/**
 * A 400 s generation succeeds when the caller allows 900 s: Volley's configured deadlines reach
 * undici, whose own header timeout would end the request at 300 s. Run in both modes:
 *
 *   node --import tsx test/scripts/long-generation.ts [seconds=400] [allowedSeconds=900]
 *
 * It takes as long as the generation; it is a measurement to run by hand, not a CI test (the
 * test suite checks the same wiring with short times in test/resilience.test.ts).
 */
import { createSimulator, simulatedChatContent } from '@volley/sim';
import { createVolley } from 'volley';

const seconds = Number(process.argv[2] ?? 400);
const allowedSeconds = Number(process.argv[3] ?? 900);
const sim = await createSimulator({ latency: { headersMs: seconds * 1000 } });
try {
  const results = await Promise.all(
    (['async', 'threads'] as const).map(async (mode) => {
      const volley = await createVolley({
        mode,
        endpoints: [{ baseUrl: sim.url }],
        model: 'volley-sim-1',
        timeoutMs: allowedSeconds * 1000,
        logger: false,
      });
      const body = {
        messages: [{ role: 'user' as const, content: `a long generation (${mode})` }],
      };
      const started = performance.now();
      try {
        const reply = await volley.chat(body);
        const ok =
          reply.choices[0]?.message.content ===
          simulatedChatContent({ model: 'volley-sim-1', ...body }).content;
        return { mode, ok, seconds: (performance.now() - started) / 1000 };
      } catch (error) {
        return {
          mode,
          ok: false,
          seconds: (performance.now() - started) / 1000,
          error: String(error),
        };
      } finally {
        await volley.close();
      }
    }),
  );
  process.stdout.write(
    `${JSON.stringify({ generationSeconds: seconds, allowedSeconds, results })}\n`,
  );
  process.exitCode = results.every((result) => result.ok) ? 0 : 1;
} finally {
  await sim.close();
}
