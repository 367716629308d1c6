// @ts-check
'use strict';

const { holdResponse } = require('../api/response-gate');
const { cookieChangesOf } = require('./versioned-copies');

/**
 * What one request through the proxy's pipeline waits for before its response leaves: the
 * writes and deletions its route made (see `RequestSync.current`), and its session's change.
 */
class Reply {
  /** @param {boolean} storesAll a route of rammerhead's that may change its session */
  constructor(storesAll) {
    /** Whether any change of its session is stored before it leaves, not only cookies. */
    this.storesAll = storesAll;
    /** The session the request is for, held when the step ended; else null. */
    this.held = null;
    /** Its cookie changes counted when the request began (see `cookieChangesOf`). */
    this.cookieChanges = 0;
    /** The stores and deletions the response waits for. */
    this.waits = [];
    /** Until its head goes: calls made for it later wait for nothing. */
    this.open = true;
  }

  /** Has the response wait for `done` as well. */
  waitFor(done) {
    this.waits.push(done);
  }
}

/**
 * The Redis store's part in requests through a proxy with rammerhead's request pipeline (see
 * `api/request-step.js`). Before a request goes on, its session is loaded if not held (one load
 * per id, off the JavaScript thread). A route's `addSerializedSession` and `delete` store in the
 * background, and its response waits for them instead of the event loop.
 *
 * With `eachRequest` (the store's `syncEachRequest`), what makes a round-robin balancer in front
 * of several hosts safe: a held copy is checked against Redis before the request goes on, and a
 * newer copy taken in (the host before may have stored it an instant ago); and before the
 * response's head leaves, a change the request made (a cookie, or any change by a route) is
 * stored, so that the next request, wherever it lands, finds it.
 *
 * Each of a request's two waits lasts at most `timeout` (the store's `syncTimeout`): a Redis that
 * hangs must not hold up requests of sessions held here. Past it, the request goes on with the
 * held copy (a newer one is still taken in when the answer comes), or the response with its
 * change unstored (the write goes on). Once a wait was missed, requests stop waiting until
 * Redis answers again.
 */
class RequestSync {
  /**
   * @param {object} cache the store's `view` of its cache
   * @param {import('../backends/redis-backend').RedisBackend} backend
   * @param {import('./remote-changes').RemoteChanges} remote
   * @param {import('./change-writer').ChangeWriter} changes
   * @param {{ eachRequest: boolean, timeout: number }} options
   */
  constructor(cache, backend, remote, changes, { eachRequest, timeout }) {
    this.eachRequest = eachRequest;
    this.timeout = timeout;
    this.cache = cache;
    this.backend = backend;
    this.remote = remote;
    this.changes = changes;
    /** The replies of route requests whose route has not run yet. */
    this.routeReplies = new WeakMap();
    /** The reply of the request whose route is running now (see `inRoute`). */
    this.routeReply = undefined;
    /** A wait missed its deadline, and what it waited for has not ended since. */
    this.lagging = false;
  }

  /**
   * The request step: resolves once the request may go on, having set up the wait of its
   * response.
   *
   * @param {import('../api/request-step').Request} request
   * @returns {Promise<unknown> | undefined}
   */
  ready(request) {
    const { req, res, id, alsoRead, isRoute } = request;
    // The upgrade pipeline: its request passes through the request pipeline afterwards.
    if (res === undefined) return this.cache.prepare([id, alsoRead]);
    if (id === undefined && !isRoute) return this.cache.prepare([alsoRead]);
    const reply = new Reply(request.namedInQuery && this.eachRequest);
    if (isRoute) this.routeReplies.set(req, reply);
    return this._ready(reply, request);
  }

  /** Runs the route of `req` (see `current`). */
  inRoute(req, run) {
    const outer = this.routeReply;
    this.routeReply = this.routeReplies.get(req);
    try {
      return run();
    } finally {
      this.routeReply = outer;
    }
  }

  /**
   * The reply of the route running now, while its response has not left: a route's
   * `addSerializedSession` and `delete` hand it what they store, in the synchronous part of its
   * handler. Undefined outside a route of the proxy.
   *
   * @returns {Reply | undefined}
   */
  current() {
    const reply = this.routeReply;
    return reply !== undefined && reply.open ? reply : undefined;
  }

  /**
   * @param {Reply} reply
   * @param {import('../api/request-step').Request} request
   */
  async _ready(reply, { res, id, alsoRead, isRoute }) {
    const { map } = this.cache.held;
    const held = id === undefined ? undefined : map.get(id);
    // A copy loaded just now is current; one held longer may not be.
    const checked =
      held !== undefined && this.eachRequest && this._mayWait()
        ? this._waitAtMost(this.remote.check(held))
        : undefined;
    const ready = this.cache.prepare([id, alsoRead], checked);
    if (ready !== undefined) await ready;
    const now = id === undefined ? undefined : map.get(id);
    if (now !== undefined && this.eachRequest) {
      reply.held = now;
      reply.cookieChanges = cookieChangesOf(now);
    }
    // A route's response waits for what its route stores, whatever session it is for.
    if (reply.held !== null || isRoute) holdResponse(res, () => this._beforeReply(reply));
  }

  /**
   * What the response waits for, decided as its head is about to leave: the storing of a change
   * the request made to its session (any cookie change; for a route, any change), and what its
   * route asked for. Undefined: nothing, or Redis is not answering (the writes go on, and a
   * change not written yet is written at the next round).
   *
   * @param {Reply} reply
   * @returns {Promise<unknown> | undefined}
   */
  _beforeReply(reply) {
    reply.open = false;
    const { held, waits } = reply;
    const changed =
      held !== null &&
      this.cache.held.holds(held) &&
      (reply.storesAll || cookieChangesOf(held) !== reply.cookieChanges);
    if (!changed && waits.length === 0) return undefined;
    if (!this._mayWait()) return undefined;
    if (changed) {
      const stored = this.changes.storeNow(held);
      if (stored !== undefined) reply.waitFor(stored);
    }
    if (waits.length === 0) return undefined;
    return this._waitAtMost(waits.length === 1 ? waits[0] : Promise.all(waits));
  }

  /** Whether a request may wait for Redis: not while it is known down or lagging, or closed. */
  _mayWait() {
    return !this.lagging && !this.cache.housekeeper.stopped && this.backend.available;
  }

  /**
   * `done`, or a promise that resolves `timeout` from now if `done` has not settled by then,
   * which leaves Redis lagging until `done` settles. Never rejects.
   *
   * @param {Promise<unknown>} done
   */
  _waitAtMost(done) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.lagging = true;
        resolve(undefined);
      }, this.timeout);
      const ended = () => {
        this.lagging = false;
        clearTimeout(timer);
        resolve(undefined);
      };
      done.then(ended, ended);
    });
  }
}

module.exports = { RequestSync };
