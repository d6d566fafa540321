/**
 * volley-threads-1: volley-threads with one worker thread, whatever the default: beside
 * volley-threads it shows what a second thread costs and buys on this box. Run only when named.
 */
import { runVolleyEmbedContender } from '../volley-contender.js';

await runVolleyEmbedContender('volley-threads-1', 'threads', { threads: 1 });
