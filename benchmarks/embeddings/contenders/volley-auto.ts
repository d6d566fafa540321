/**
 * volley-auto (opt-in: `--contenders volley-auto,...`): `mode: 'auto'`, which routes each request to
 * the loop or to the threads from the workload. It should match the faster of the two modes per cell.
 */
import type { VolleyMode } from 'volley';
import { runVolleyEmbedContender } from '../volley-contender.js';

// Cast through string: this file must still typecheck against a build without `auto`.
await runVolleyEmbedContender('volley-auto', 'auto' as string as VolleyMode);
