/**
 * volley-threads-1: volley-threads with one worker thread, whatever the default (1 on 2 cores, 2
 * from 3 cores up): beside volley-threads-2 it shows what the second worker costs (client CPU per
 * request) and buys (req/s).
 */
import { runVolleyContender } from '../volley-contender.js';

await runVolleyContender('volley-threads-1', 'threads', { threads: 1 });
