/** volley-async-metrics: volley-async keeping Prometheus metrics, scraped every second. */
import { runVolleyContender } from '../volley-contender.js';

await runVolleyContender('volley-async-metrics', 'async', { metrics: true });
