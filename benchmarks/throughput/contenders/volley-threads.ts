/** volley-threads: Volley with its Piscina pool of worker threads (2 by default on this box). */
import { runVolleyContender } from '../volley-contender.js';

await runVolleyContender('volley-threads', 'threads');
