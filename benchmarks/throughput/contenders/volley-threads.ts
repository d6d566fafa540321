/** volley-threads: Volley with its Piscina pool of worker threads (the default count: 1 on 2 cores). */
import { runVolleyContender } from '../volley-contender.js';

await runVolleyContender('volley-threads', 'threads');
