/**
 * Assembles an OpenAI-style SSE stream (chat or text completion chunks) into the body the same
 * request returns without streaming, so callers and batch files see one shape either way.
 *
 * A stream is complete only with `[DONE]` or when every choice has a `finish_reason`; a clean
 * close before that is a truncated stream, never a success.
 */
import type { ChatCompletion, Completion, FinishReason, ToolCall, Usage } from '@volley/core';

interface ChoiceState {
  role: 'assistant';
  parts: string[];
  finishReason: FinishReason | null;
  toolCalls: ToolCall[] | undefined;
}

interface ToolCallDelta {
  index?: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

interface ChunkChoice {
  index?: unknown;
  delta?: { content?: unknown; tool_calls?: unknown };
  text?: unknown;
  finish_reason?: unknown;
}

export interface ChunkDelta {
  choice: number;
  content: string;
}

export class StreamAssembler {
  readonly #kind: 'chat' | 'completion';
  readonly #choices = new Map<number, ChoiceState>();
  #id = '';
  #created = 0;
  #model = '';
  #systemFingerprint: string | null | undefined;
  #usage: Usage | undefined;
  sawDone = false;

  constructor(kind: 'chat' | 'completion') {
    this.#kind = kind;
  }

  get usage(): Usage | undefined {
    return this.#usage;
  }

  /** Folds one parsed chunk in; returns the content it carried (for TTFT and `onDelta`). */
  accept(chunk: Record<string, unknown>): ChunkDelta[] {
    if (typeof chunk.id === 'string' && this.#id === '') this.#id = chunk.id;
    if (typeof chunk.created === 'number' && this.#created === 0) this.#created = chunk.created;
    if (typeof chunk.model === 'string' && this.#model === '') this.#model = chunk.model;
    if (typeof chunk.system_fingerprint === 'string')
      this.#systemFingerprint = chunk.system_fingerprint;
    if (isUsage(chunk.usage)) this.#usage = chunk.usage;
    const deltas: ChunkDelta[] = [];
    if (!Array.isArray(chunk.choices)) return deltas;
    for (const raw of chunk.choices as ChunkChoice[]) {
      const index = typeof raw.index === 'number' ? raw.index : 0;
      let state = this.#choices.get(index);
      if (state === undefined) {
        state = { role: 'assistant', parts: [], finishReason: null, toolCalls: undefined };
        this.#choices.set(index, state);
      }
      const text = this.#kind === 'chat' ? raw.delta?.content : raw.text;
      if (typeof text === 'string' && text.length > 0) {
        state.parts.push(text);
        deltas.push({ choice: index, content: text });
      }
      if (this.#kind === 'chat' && Array.isArray(raw.delta?.tool_calls)) {
        mergeToolCalls(state, raw.delta.tool_calls as ToolCallDelta[]);
        if (deltas.length === 0) deltas.push({ choice: index, content: '' });
      }
      if (typeof raw.finish_reason === 'string')
        state.finishReason = raw.finish_reason as FinishReason;
    }
    return deltas;
  }

  get isComplete(): boolean {
    if (this.sawDone) return this.#choices.size > 0;
    if (this.#choices.size === 0) return false;
    for (const choice of this.#choices.values()) if (choice.finishReason === null) return false;
    return true;
  }

  result(): ChatCompletion | Completion {
    const indices = [...this.#choices.keys()].sort((a, b) => a - b);
    const common = { id: this.#id, created: this.#created, model: this.#model };
    if (this.#kind === 'completion') {
      const completion: Completion = {
        ...common,
        object: 'text_completion',
        choices: indices.map((index) => {
          const state = this.#choices.get(index) as ChoiceState;
          return {
            index,
            text: state.parts.join(''),
            finish_reason: state.finishReason,
            logprobs: null,
          };
        }),
      };
      if (this.#usage !== undefined) completion.usage = this.#usage;
      return completion;
    }
    const chat: ChatCompletion = {
      ...common,
      object: 'chat.completion',
      choices: indices.map((index) => {
        const state = this.#choices.get(index) as ChoiceState;
        const message: ChatCompletion['choices'][number]['message'] = {
          role: state.role,
          content:
            state.parts.length === 0 && state.toolCalls !== undefined ? null : state.parts.join(''),
        };
        if (state.toolCalls !== undefined) message.tool_calls = state.toolCalls;
        return { index, message, finish_reason: state.finishReason, logprobs: null };
      }),
    };
    if (this.#usage !== undefined) chat.usage = this.#usage;
    if (this.#systemFingerprint !== undefined) chat.system_fingerprint = this.#systemFingerprint;
    return chat;
  }
}

/** Tool-call deltas arrive in pieces keyed by `index`; `arguments` is concatenated. */
function mergeToolCalls(state: ChoiceState, deltas: ToolCallDelta[]): void {
  state.toolCalls ??= [];
  for (const delta of deltas) {
    const index = delta.index ?? state.toolCalls.length;
    let call = state.toolCalls[index];
    if (call === undefined) {
      call = { id: '', type: 'function', function: { name: '', arguments: '' } };
      state.toolCalls[index] = call;
    }
    if (delta.id !== undefined) call.id = delta.id;
    if (delta.function?.name !== undefined) call.function.name += delta.function.name;
    if (delta.function?.arguments !== undefined)
      call.function.arguments += delta.function.arguments;
  }
}

export function isUsage(value: unknown): value is Usage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Usage).prompt_tokens === 'number' &&
    typeof (value as Usage).total_tokens === 'number'
  );
}
