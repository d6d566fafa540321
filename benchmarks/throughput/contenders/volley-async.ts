/** volley-async: Volley with its worker actor on the main event loop (no threads). */
import { runVolleyContender } from '../volley-contender.js';

await runVolleyContender('volley-async', 'async');
