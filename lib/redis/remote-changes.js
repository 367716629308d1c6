// @ts-check
'use strict';

const { Cause } = require('../cache/held-sessions');
const { versionOf } = require('./versioned-copies');

/** Sessions whose newer copies one fetch asks for: one script call stays short. */
const FETCH_BATCH = 256;
/** After a fetch failed, when its sessions are asked for again (unless something asks sooner). */
const FETCH_RETRY_MS = 1000;
/** At most this many fetched copies taken in per turn: each is revived, and maybe merged. */
const MAX_PER_TURN = 16;

/**
 * Keeps the sessions held here in step with what other hosts store under the same key prefix.
 * When another host stores a newer version of a held session (heard on the changes channel),
 * the held copy takes it in place, so that objects hammerhead holds stay valid: as it is when
 * nothing changed here since, merged with what changed here otherwise (and then written). A
 * session deleted by another host leaves memory. After the subscription was lost, every held
 * version is checked again.
 */
class RemoteChanges {
  /**
   * @param {object} cache the store's `view` of its cache
   * @param {import('../backends/redis-backend').RedisBackend} backend
   * @param {import('./versioned-copies').VersionedCopies} copies
   */
  constructor(cache, backend, copies) {
    this.cache = cache;
    this.backend = backend;
    this.copies = copies;
    /** id -> version held, of the sessions whose newer copy is to be fetched. */
    this.due = new Map();
    /**
     * After a (re)subscription, the held sessions not checked yet: an iterator over the held
     * sessions, taken a batch at a time, so that a host holding many does not stall on naming
     * them all at once.
     */
    this.unchecked = null;
    /** Fetched while a write of theirs was under way: fetched again once it is reported. */
    this.deferred = new Set();
    this.fetching = false;
    /** The last fetch failed: later failures are logged at debug level until one succeeds. */
    this.failing = false;
    this.retryTimer = null;
    /** The checks asked for in this turn, by id, and the promise of their end. */
    this.checks = null;
    this.checked = null;
    backend.onRemoteChanges(() => this.take());
    backend.onWritesReported(() => this._retryDeferred());
  }

  /**
   * Compares the held session's version with the stored one, taking in a newer copy, before a
   * request reads it: another host may have stored it an instant ago, announced or not yet.
   * The checks asked for in one turn go to Redis in one fetch. Resolves when done, whether the
   * fetch was answered or failed (see `RequestSync` for how long a request waits).
   *
   * @returns {Promise<void>}
   */
  check(held) {
    if (this.checks === null) {
      const checks = new Map();
      this.checks = checks;
      this.checked = new Promise((resolve) => {
        setImmediate(() => {
          if (this.checks === checks) this.checks = null;
          this._checkAll(checks).then(resolve);
        });
      });
    }
    this.checks.set(held.id, held);
    return /** @type {Promise<void>} */ (this.checked);
  }

  /** One fetch for `checks`. */
  _checkAll(checks) {
    const { cache } = this;
    const helds = Array.from(checks.values()).filter((held) => cache.held.holds(held));
    if (helds.length === 0) return Promise.resolve();
    return this.backend
      .fetch(
        helds.map((held) => held.id),
        helds.map(versionOf),
      )
      .then(
        (copies) => {
          for (const copy of copies) this._takeInOrLog(copy);
        },
        (error) => {
          cache.logger.debug(
            `(${cache.name}) cannot check versions: ${error.code} ${error.message}`,
          );
        },
      );
  }

  /** Takes what other hosts announced, and fetches the newer copies of sessions held here. */
  take() {
    const { cache, copies } = this;
    for (const change of this.backend.takeRemoteChanges()) {
      if (change.kind === 'subscribed') {
        copies.counts.subscribed = true;
        this.unchecked = cache.held.map.values();
        continue;
      }
      if (change.kind === 'unsubscribed') {
        copies.counts.subscribed = false;
        // While Redis is down the store says so already.
        const log = this.backend.available ? cache.logger.warn : cache.logger.debug;
        log.call(
          cache.logger,
          `(${cache.name}) cannot subscribe to other hosts' changes (${change.reason}); retrying, and until then copies held here are refreshed only when a write of them is refused`,
        );
        continue;
      }
      const held = cache.held.map.get(change.id);
      if (held === undefined) continue;
      // A copy stored (or imported) here after the delete is another session.
      if (!(change.version > versionOf(held))) continue;
      if (change.kind === 'deleted') this._dropDeleted(held);
      else this.due.set(held.id, versionOf(held));
    }
    this._fetch();
  }

  /** After writes were reported: fetches again what was deferred for them. */
  _retryDeferred() {
    if (this.deferred.size === 0) return;
    for (const held of this.deferred) {
      if (this.cache.held.holds(held)) this.due.set(held.id, versionOf(held));
    }
    this.deferred.clear();
    this._fetch();
  }

  /** Drops a held session deleted elsewhere, whatever changed here: the delete wins. */
  _dropDeleted(held) {
    if (this.cache.drop(held, Cause.DELETED_ELSEWHERE)) this.copies.counts.droppedDeleted++;
  }

  async _fetch() {
    const { cache } = this;
    const { housekeeper } = cache;
    if (housekeeper.stopped || this.fetching) return;
    if (this.due.size === 0 && this.unchecked === null) return;
    this.fetching = true;
    const batch = this._nextBatch();
    try {
      const copies = await this.backend.fetch(
        batch.map(([id]) => id),
        batch.map(([, version]) => version),
      );
      // Taking a copy in revives it, and merging serializes too: a batch of them at once
      // would hold the event loop for tens of milliseconds.
      await housekeeper.inSlices(copies, (copy) => this._takeInOrLog(copy), {
        maxPerTurn: MAX_PER_TURN,
      });
    } catch (error) {
      // Asked for again later: nothing else would ask (a reply that came too late leaves the
      // connection up, so no new subscription checks them), and asking at once while Redis is
      // down would only fail the same way, batch after batch.
      for (const [id] of batch) {
        const held = cache.held.map.get(id);
        if (held !== undefined && !this.due.has(id)) this.due.set(id, versionOf(held));
      }
      const log = this.failing ? cache.logger.debug : cache.logger.warn;
      log.call(
        cache.logger,
        `(${cache.name}) cannot fetch copies changed elsewhere, retrying: ${error.code} ${error.message}`,
      );
      this.failing = true;
      this._retryLater();
      return;
    } finally {
      this.fetching = false;
    }
    this.failing = false;
    this._fetch();
  }

  /** The next sessions to ask for: those due, then those not checked since a subscription. */
  _nextBatch() {
    const batch = [];
    for (const entry of this.due) {
      if (batch.push(entry) === FETCH_BATCH) break;
    }
    for (const [id] of batch) this.due.delete(id);
    while (batch.length < FETCH_BATCH && this.unchecked !== null) {
      const next = this.unchecked.next();
      if (next.done) this.unchecked = null;
      else batch.push([next.value.id, versionOf(next.value)]);
    }
    return batch;
  }

  /** `_takeIn`, where a copy that cannot be taken in costs no other copy of its batch. */
  _takeInOrLog(copy) {
    try {
      this._takeIn(copy);
    } catch (error) {
      this.cache.logger.warn(
        `(${this.cache.name}) cannot take in ${copy.id} changed elsewhere: ${error.message}`,
      );
    }
  }

  /** Takes in one fetched copy: `{ id, version, json }`, json absent when deleted since. */
  _takeIn(copy) {
    const { cache } = this;
    const held = cache.held.map.get(copy.id);
    if (held === undefined) return;
    // Until that write is reported, the base of this copy is not known: the one it was
    // loaded as, or what that write stores.
    if (this.backend.isWriting(held.id)) {
      this.deferred.add(held);
      return;
    }
    if (copy.json === undefined) {
      this._dropDeleted(held);
      return;
    }
    const adopted = this.copies.adopt(held, copy.version, copy.json, cache.isUnwritten(held));
    if (adopted === undefined) return;
    if (adopted.merged) cache.markUnwritten(held);
    if (cache.isUnwritten(held)) cache.write(held, adopted.json);
  }

  _retryLater() {
    if (this.retryTimer !== null) return;
    this.retryTimer = this.cache.housekeeper.after(FETCH_RETRY_MS, () => {
      this.retryTimer = null;
      this._fetch();
    });
  }
}

module.exports = { RemoteChanges };
