/** volley-threads: Volley with its Piscina pool of worker threads (2 by default on this box), decoding there. */
import { runVolleyEmbedContender } from '../volley-contender.js';

await runVolleyEmbedContender('volley-threads', 'threads');
