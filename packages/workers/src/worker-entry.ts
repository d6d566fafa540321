/**
 * The file Piscina loads in each thread. Piscina tries require() before import(), and on Node 20 a
 * require() of an ES module that is cut short by the thread being terminated aborts the whole
 * process (an assertion in CreateRequiredModuleFacade, seen in CI while threads were killed during
 * start-up). The top-level await below makes require() refuse this module before evaluating
 * anything (ERR_REQUIRE_ASYNC_MODULE), so the worker is always loaded through import(), which
 * reports an interrupted load as an ordinary error.
 */

const { default: noTask } = await import('./worker.js');

export default noTask;
