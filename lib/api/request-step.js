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
  return requestOf(req, undefined, isRoute).id;
}

/**
 * What the step knows of `req` (see `Request`), its session found as `sessionIdOf` says.
 *
 * @returns {Request}
 */
function requestOf(req, res, isRoute) {
  const queried = isRoute ? routeQueryId(req.url) : undefined;
  const own = isRoute ? queried : captured(PROXIED_PATH, req.url);
  const id = own !== undefined ? own : captured(PROXIED_PATH, req.headers && req.headers.referer);
  const alsoRead = isRoute ? undefined : otherRead(req, id);
  return { req, res, id, alsoRead, isRoute, namedInQuery: queried !== undefined };
}

/**
 * The session of rammerhead's routes, decoded as they read it: `?id=` (`/editsession`,
 * `/deletesession`), else `?sessionId=` (`/syncLocalStorage`), as rammerhead's cluster balancer
 * finds it.
 *
 * @param {string | undefined} url
 */
function routeQueryId(url) {
  const query = typeof url === 'string' ? url.indexOf('?') : -1;
  if (query < 0) return undefined;
  const params = new URLSearchParams(url.slice(query + 1).replace(/#.*/, ''));
  return params.get('id') || params.get('sessionId') || undefined;
}

/**
 * @typedef {object} Request What the step knows of a request before it goes on.
 * @property {any} req
 * @property {any} [res] its response, or a WebSocket's socket; absent in the upgrade pipeline,
 *   whose request passes through the request pipeline afterwards
 * @property {string} [id] the session it is for (see `sessionIdOf`)
 * @property {string} [alsoRead] another session rammerhead's own step reads for it: the 32
 *   letters and digits opening a longer first segment
 * @property {boolean} isRoute whether one of the proxy's own routes answers it
 * @property {boolean} namedInQuery whether a route names its session in its query, as
 *   rammerhead's session routes do (`/editsession?id=`, `/syncLocalStorage?sessionId=`)
 */

/**
 * @typedef {object} RequestHandlers What the store does with each request.
 * @property {(request: Request) => Promise<unknown> | undefined} ready gets the request's
 *   sessions ready; the request goes on once it resolves
 * @property {(req: any, run: () => any) => any} [inRoute] runs one of the proxy's routes for
 *   `req` (the synchronous part of its handler), returning what `run` returns
 */

/**
 * On a proxy with rammerhead's request pipelines (`addToOnRequestPipeline`,
 * `addToOnUpgradePipeline`, whose handlers the proxy awaits before hammerhead reads
 * `openSessions`), adds one step to each, kept first, that awaits `handlers.ready` before the
 * request goes on; and runs the proxy's routes (hammerhead's `_route`) through
 * `handlers.inRoute`. Any other proxy is left as it is: hammerhead's synchronous `get` then
 * loads a session itself.
 *
 * @param {any} proxy
 * @param {RequestHandlers} handlers
 */
function addRequestStep(proxy, { ready, inRoute }) {
  // Not async: a request with nothing to wait for goes on without a promise made for it (the
  // proxy awaits whatever a step returns; only `true` would end the request).
  /** @type {Record<string, (...args: any[]) => Promise<unknown> | false>} */
  const steps = {
    /** (req, res, serverInfo, isRoute, isWebsocket), as rammerhead calls it. */
    onRequestPipeline: (req, res, serverInfo, isRoute) => {
      const done = ready(requestOf(req, res, isRoute === true));
      return done === undefined ? false : done;
    },
    /** (req, socket, head, serverInfo, isRoute). */
    onUpgradePipeline: (req) => {
      const done = ready(requestOf(req, undefined, false));
      return done === undefined ? false : done;
    },
  };
  let added = false;
  for (const [add, pipeline] of [
    ['addToOnRequestPipeline', 'onRequestPipeline'],
    ['addToOnUpgradePipeline', 'onUpgradePipeline'],
  ]) {
    if (typeof proxy[add] !== 'function' || !Array.isArray(proxy[pipeline])) continue;
    added = true;
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
  if (added && inRoute !== undefined && typeof proxy._route === 'function') {
    const route = proxy._route;
    proxy._route = function (req, ...args) {
      return inRoute(req, () => route.call(this, req, ...args));
    };
  }
}

/** The session rammerhead's own step reads for `req`, when it is not `id`. */
function otherRead(req, id) {
  const read = captured(RAMMERHEAD_PATH, req.url);
  return read === id ? undefined : read;
}

module.exports = { addRequestStep, sessionIdOf };
