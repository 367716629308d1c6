// @ts-check
'use strict';

/**
 * The session a proxied URL names, as hammerhead reads it before asking `openSessions.get`: the
 * first segment of the path, up to `*` (a window id) or `!` (the resource's flags), when more
 * path follows (`/<id>!s/http://site.test/x.js`).
 */
const PROXIED_PATH = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/]+)?\/([^/!*]+)[^/]*\/[\s\S]/i;
/**
 * The session rammerhead's own steps read (its `getSessionId`, used by `restrictSessionToIP`):
 * 32 letters and digits opening the path.
 */
const RAMMERHEAD_PATH = /^(?:[a-z0-9]+:\/\/[^/]+)?\/([a-z0-9]{32})/i;
/**
 * The session of rammerhead's routes: `?id=` (`/editsession`, `/deletesession`), `?sessionId=`
 * (`/syncLocalStorage`), as rammerhead's cluster balancer finds it.
 */
const ROUTE_QUERY = /[?&](?:id|sessionId)=([a-z0-9]{32})(?:&|#|$)/i;

/** The first capture of `pattern` in `text`, if any. */
function captured(pattern, text) {
  const found = typeof text === 'string' ? pattern.exec(text) : null;
  return found ? found[1] : undefined;
}

/**
 * The session a request is for: the one its proxied URL names (a route: its query's), else the
 * one its referer names (a page's request for `/favicon.ico`, or hammerhead's own routes, which
 * serve the referring page's session).
 *
 * @param {{ url?: string, headers?: Record<string, string | string[] | undefined> }} req
 * @param {boolean} [isRoute]
 * @returns {string | undefined}
 */
function sessionIdOf(req, isRoute = false) {
  const own = captured(isRoute ? ROUTE_QUERY : PROXIED_PATH, req.url);
  if (own !== undefined) return own;
  return captured(PROXIED_PATH, req.headers && req.headers.referer);
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
  // Not async: a request with nothing to wait for goes on without a promise made for it (the
  // proxy awaits whatever a step returns; only `true` would end the request).
  /** @type {Record<string, (...args: any[]) => Promise<unknown> | false>} */
  const steps = {
    /** (req, res, serverInfo, isRoute, isWebsocket), as rammerhead calls it. */
    onRequestPipeline: (req, res, serverInfo, isRoute) => {
      const route = isRoute === true;
      const id = sessionIdOf(req, route);
      const done = ready(id, res, route);
      // Another session rammerhead's own step would read (a longer first segment whose first
      // 32 characters are letters and digits): loaded too, so that no read waits for it.
      const read = route ? undefined : captured(RAMMERHEAD_PATH, req.url);
      const alsoDone = read === undefined || read === id ? undefined : ready(read);
      if (alsoDone !== undefined) return Promise.all([done, alsoDone]);
      return done === undefined ? false : done;
    },
    /** (req, socket, head, serverInfo, isRoute). */
    onUpgradePipeline: (req) => {
      const id = sessionIdOf(req);
      const done = id === undefined ? undefined : ready(id);
      return done === undefined ? false : done;
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

module.exports = { addRequestStep, sessionIdOf };
