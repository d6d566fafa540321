export { decodeEmbeddings } from './embeddings.js';
export type { Executor, ExecutorStats } from './executor.js';
export { createExecutor } from './executor.js';
export type { InlineDispatcherOptions } from './inline-dispatcher.js';
export { createInlineDispatcher } from './inline-dispatcher.js';
export { SseParser } from './sse.js';
export { StreamAssembler } from './stream-assembler.js';
export type { ThreadDispatcherOptions } from './thread-dispatcher.js';
export { createThreadDispatcher, defaultWorkerUrl } from './thread-dispatcher.js';
