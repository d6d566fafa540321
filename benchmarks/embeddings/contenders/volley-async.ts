/** volley-async: Volley with its worker actor on the main event loop; decoding happens there too. */
import { runVolleyEmbedContender } from '../volley-contender.js';

await runVolleyEmbedContender('volley-async', 'async');
