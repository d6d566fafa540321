/**
 * The engine's state in the formats real servers publish it, so a client that reads server hints
 * (an adaptive concurrency limit, a benchmark's server-side view) can be tested against the
 * simulator without knowing it is one:
 *
 * - `GET /metrics`: Prometheus text with vLLM's scheduler gauges, named and labelled as vLLM's
 *   `PrometheusStatLogger` registers them (vllm/v1/metrics/loggers.py: `vllm:num_requests_running`
 *   "Number of requests in model execution batches.", `vllm:num_requests_waiting`, labels
 *   `model_name` and `engine`). vLLM exports no gauge for `max_num_seqs`, so the slot count is a
 *   comment plus a gauge under the simulator's own prefix.
 * - `GET /slots`: llama.cpp's array, one object per slot with `id` and `is_processing`.
 * - `GET /props`: llama.cpp's `total_slots`.
 * - `GET /sim/engine`: the simulator's own JSON ({@link EngineState}).
 */

import type { EngineState } from './engine.js';

/** Prometheus text exposition of the engine's gauges. */
export function metricsText(state: EngineState, model: string): string {
  const labels = `{model_name=${JSON.stringify(model)},engine="0"}`;
  return (
    `# volley-sim engine: ${state.slots} slots (vLLM max_num_seqs)\n` +
    '# HELP vllm:num_requests_running Number of requests in model execution batches.\n' +
    '# TYPE vllm:num_requests_running gauge\n' +
    `vllm:num_requests_running${labels} ${state.running.toFixed(1)}\n` +
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n' +
    '# TYPE vllm:num_requests_waiting gauge\n' +
    `vllm:num_requests_waiting${labels} ${state.waiting.toFixed(1)}\n` +
    '# HELP volley_sim_engine_slots Sequences the simulated engine decodes together.\n' +
    '# TYPE volley_sim_engine_slots gauge\n' +
    `volley_sim_engine_slots${labels} ${state.slots.toFixed(1)}\n`
  );
}

/** llama.cpp's `/slots`: the first `running` slots are busy (slots are interchangeable here). */
export function slotsJson(state: EngineState): string {
  const slots = new Array<{ id: number; is_processing: boolean }>(state.slots);
  for (let id = 0; id < state.slots; id++) slots[id] = { id, is_processing: id < state.running };
  return JSON.stringify(slots);
}

/** llama.cpp's `/props`, reduced to what describes capacity. */
export function propsJson(state: EngineState): string {
  return JSON.stringify({ total_slots: state.slots });
}
