/**
 * OpenAI-compatible wire types: the subset Volley reads and writes. Fields a server may add are
 * kept (index signatures on bodies) so results round-trip unchanged into batch output files.
 */

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: ChatRole;
  /** A string, or OpenAI content parts (text parts are what the simulator and token estimates read). */
  content: string | Array<{ type: string; text?: string; [key: string]: unknown }> | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

export interface ChatCompletionRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  max_completion_tokens?: number;
  n?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  [key: string]: unknown;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [key: string]: unknown;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface ChatCompletionChoice {
  index: number;
  message: {
    role: 'assistant';
    content: string | null;
    tool_calls?: ToolCall[];
    [key: string]: unknown;
  };
  finish_reason: FinishReason | null;
  logprobs?: unknown;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage?: Usage;
  system_fingerprint?: string | null;
  [key: string]: unknown;
}

export interface ChatCompletionChunkChoice {
  index: number;
  delta: {
    role?: 'assistant';
    content?: string | null;
    tool_calls?: unknown[];
    [key: string]: unknown;
  };
  finish_reason: FinishReason | null;
  logprobs?: unknown;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChatCompletionChunkChoice[];
  usage?: Usage | null;
  system_fingerprint?: string | null;
  [key: string]: unknown;
}

export interface CompletionRequest {
  model: string;
  prompt: string | string[];
  max_tokens?: number;
  n?: number;
  temperature?: number;
  seed?: number;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  [key: string]: unknown;
}

export interface CompletionChoice {
  index: number;
  text: string;
  finish_reason: FinishReason | null;
  logprobs?: unknown;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: Usage;
  [key: string]: unknown;
}

export interface EmbeddingRequest {
  model: string;
  input: string | string[];
  encoding_format?: 'float' | 'base64';
  dimensions?: number;
  [key: string]: unknown;
}

export interface EmbeddingData {
  object: 'embedding';
  index: number;
  /** float JSON, or little-endian float32 bytes in base64 when `encoding_format` is `base64`. */
  embedding: number[] | string;
}

export interface EmbeddingResponse {
  object: 'list';
  data: EmbeddingData[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface Model {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface ModelList {
  object: 'list';
  data: Model[];
}

/** The error envelope OpenAI-compatible servers answer with. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Endpoint paths relative to an OpenAI-style base URL (`http://host:port/v1`). */
export const ENDPOINT_PATHS = {
  chat: '/chat/completions',
  completion: '/completions',
  embedding: '/embeddings',
  models: '/models',
} as const;

export type Operation = Exclude<keyof typeof ENDPOINT_PATHS, 'models'>;
