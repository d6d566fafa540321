/** volley-threads-metrics: volley-threads keeping Prometheus metrics, scraped every second. */
import { runVolleyContender } from '../volley-contender.js';

await runVolleyContender('volley-threads-metrics', 'threads', { metrics: true });
