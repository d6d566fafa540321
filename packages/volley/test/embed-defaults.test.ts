import { describe, expect, it } from 'vitest';
import { defaultBatchSize } from '../src/create-volley.js';
import { DEFAULT_EMBED_BATCH_SIZE } from '../src/embed.js';

describe('defaultBatchSize', () => {
  it("uses OpenAI's 2,048 inputs only when every endpoint is OpenAI's", () => {
    expect(defaultBatchSize(['https://api.openai.com/v1'])).toBe(2048);
    expect(defaultBatchSize(['https://my-team.openai.azure.com/openai/v1'])).toBe(2048);
    expect(defaultBatchSize(['https://api.openai.com/v1', 'http://127.0.0.1:8000/v1'])).toBe(
      DEFAULT_EMBED_BATCH_SIZE,
    );
    expect(defaultBatchSize(['http://localhost:11434/v1'])).toBe(DEFAULT_EMBED_BATCH_SIZE);
    expect(defaultBatchSize(['https://api.openai.com.evil.example/v1'])).toBe(
      DEFAULT_EMBED_BATCH_SIZE,
    );
    expect(defaultBatchSize([])).toBe(DEFAULT_EMBED_BATCH_SIZE);
  });
});
