/**
 * volley-threads-2: volley-threads with two worker threads, whatever the default (1 on 2 cores):
 * beside volley-threads-1 it shows what the second thread costs and buys on this box.
 */
import { runVolleyContender } from '../volley-contender.js';

await runVolleyContender('volley-threads-2', 'threads', { threads: 2 });
