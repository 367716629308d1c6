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

/** The session id of rammerhead's routes: `?id=` (`/editsession`), `?sessionId=` (`/syncLocalStorage`). */
const ROUTE_ID = /[?&](?:id|sessionId)=([a-z0-9]{32})(?:&|#|$)/i;

/** The session a route request names in its query, as rammerhead's cluster balancer finds it. */
function routeSessionIdOf(req) {
  const named = ROUTE_ID.exec(req.url || '');
  return named ? named[1] : undefined;
}

/**
 * On a proxy with rammerhead's request pipelines (`addToOnRequestPipeline`,
 * `addToOnUpgradePipeline`, whose handlers the proxy awaits before hammerhead reads
 * `openSessions`), adds one step to each, kept first. Before a request goes on, the step awaits
 * `ready(id, res, isRoute)`: `id` its session (undefined for none), `res` its response (or a
 * WebSocket's socket), `isRoute` whether one of the proxy's own routes answers it. An upgrade
 * passes through the request pipeline too, after the upgrade pipeline, which only awaits
 * `ready(id)`. Any other proxy is left as it is: hammerhead's synchronous `get` then loads a
 * session itself.
 *
 * @param {any} proxy
 * @param {(id: string | undefined, res?: any, isRoute?: boolean) => Promise<void> | undefined} ready
 */
function addRequestStep(proxy, ready) {
  /** @type {Record<string, (...args: any[]) => Promise<boolean>>} */
  const steps = {
    /** (req, res, serverInfo, isRoute, isWebsocket), as rammerhead calls it. */
    onRequestPipeline: async (req, res, serverInfo, isRoute) => {
      const id = sessionIdOf(req) || (isRoute ? routeSessionIdOf(req) : undefined);
      const done = ready(id, res, isRoute === true);
      if (done !== undefined) await done;
      return false;
    },
    /** (req, socket, head, serverInfo, isRoute). */
    onUpgradePipeline: async (req) => {
      const id = sessionIdOf(req);
      const done = id === undefined ? undefined : ready(id);
      if (done !== undefined) await done;
      return false;
    },
  };
  for (const [add, pipeline] of [
    ['addToOnRequestPipeline', 'onRequestPipeline'],
    ['addToOnUpgradePipeline', 'onUpgradePipeline'],
  ]) {
    if (typeof proxy[add] !== 'function' || !Array.isArray(proxy[pipeline])) continue;
    const step = steps[pipeline];
    proxy[pipeline].unshift(step);
    // Steps added later go after it: rammerhead's own first step reads the session
    // (`restrictSessionToIP`), which must find it ready.
    const original = proxy[add];
    proxy[add] = function (...args) {
      const result = original.apply(this, args);
      const at = this[pipeline].indexOf(step);
      if (at > 0) {
        this[pipeline].splice(at, 1);
        this[pipeline].unshift(step);
      }
      return result;
    };
  }
}

module.exports = { addRequestStep, sessionIdOf, routeSessionIdOf };
