/** volley-threads: Volley with its Piscina pool of worker threads (the default count), decoding there. */
import { runVolleyEmbedContender } from '../volley-contender.js';

await runVolleyEmbedContender('volley-threads', 'threads');
