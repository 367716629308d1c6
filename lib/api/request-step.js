// @ts-check
'use strict';

/** A session id as rammerhead finds it: 32 letters and digits opening the path. */
const SESSION_PATH = /^(?:[a-z0-9]+:\/\/[^/]+)?\/([a-z0-9]{32})/i;

/**
 * The session id of a request: the first segment of its path, else of its referer's (a page's
 * request for `/favicon.ico`, say, which hammerhead serves from the referring page's session).
 *
 * @param {{ url?: string, headers?: Record<string, string | string[] | undefined> }} req
 * @returns {string | undefined}
 */
function sessionIdOf(req) {
  const inPath = SESSION_PATH.exec(req.url || '');
  if (inPath) return inPath[1];
  const referer = req.headers && req.headers.referer;
  if (typeof referer !== 'string') return undefined;
  const inReferer = SESSION_PATH.exec(referer);
  return inReferer ? inReferer[1] : undefined;
}

/**
 * On a proxy with rammerhead's request pipelines (`addToOnRequestPipeline`,
 * `addToOnUpgradePipeline`, whose handlers the proxy awaits before hammerhead reads
 * `openSessions`), adds one step, kept first, that awaits `prepare(id)` for the request's
 * session. Any other proxy is left as it is: hammerhead's synchronous `get` then loads a
 * session itself.
 *
 * @param {any} proxy
 * @param {(id: string) => Promise<void> | undefined} prepare
 */
function addRequestStep(proxy, prepare) {
  /** @param {any} req */
  const step = async (req) => {
    const id = sessionIdOf(req);
    if (id === undefined) return false;
    const ready = prepare(id);
    if (ready !== undefined) await ready;
    return false;
  };
  for (const [add, pipeline] of [
    ['addToOnRequestPipeline', 'onRequestPipeline'],
    ['addToOnUpgradePipeline', 'onUpgradePipeline'],
  ]) {
    if (typeof proxy[add] !== 'function' || !Array.isArray(proxy[pipeline])) continue;
    proxy[pipeline].unshift(step);
    // Steps added later go after it: rammerhead's own first step reads the session
    // (`restrictSessionToIP`), which must find it ready.
    const original = proxy[add];
    proxy[add] = function (...args) {
      const result = original.apply(this, args);
      const steps = this[pipeline];
      const at = steps.indexOf(step);
      if (at > 0) {
        steps.splice(at, 1);
        steps.unshift(step);
      }
      return result;
    };
  }
}

module.exports = { addRequestStep, sessionIdOf };
