'use strict';

const { performance } = require('perf_hooks');
const { MergeBase, changeFingerprint, mergeSessions } = require('../index.js');

/** Sessions whose newer copies one fetch asks for: one script call stays short. */
const FETCH_BATCH = 256;
/** After a fetch failed, when its sessions are asked for again (unless something asks sooner). */
const FETCH_RETRY_MS = 1000;
/** Longest stretch taking fetched copies in holds the event loop before it yields. */
const SLICE_MS = 1;
/** At most this many copies taken in per slice, however fast the clock says they went. */
const MAX_PER_SLICE = 16;

/**
 * Keeps the sessions held here in step with what other hosts store under the same key prefix.
 *
 * Every stored copy has a version. A held session remembers the version it was loaded (or last
 * stored) as, and a `MergeBase` of that copy. When another host stores a newer version (heard
 * on the changes channel, or told by a write refused for it), the held copy takes it in place,
 * so that objects hammerhead holds stay valid: as it is when nothing changed here since, merged
 * with what changed here otherwise (and then written). A session deleted by another host leaves
 * memory. After the subscription was lost, every held version is checked again.
 */
class RemoteChanges {
  /** @param {import('./redis-store').RammerheadSessionRedisStore} store */
  constructor(store) {
    this.store = store;
    /** id -> version held, of the sessions whose newer copy is to be fetched. */
    this.due = new Map();
    /**
     * After a (re)subscription, the held sessions not checked yet: an iterator over the Map,
     * taken a batch at a time, so that a host holding many sessions does not stall on naming
     * them all at once.
     */
    this.unchecked = null;
    /** Fetched while a write of theirs was under way: fetched again once it is reported. */
    this.deferred = new Set();
    this.fetching = false;
    /** The subscription to other hosts' changes was made, as last heard. */
    this.subscribed = false;
    /** The last fetch failed: later failures are logged at debug level until one succeeds. */
    this.failing = false;
    this.retryTimer = null;
    this.stopped = false;
    /** Copies taken in place as stored elsewhere, and merged with changes made here. */
    this.refreshed = 0;
    this.merged = 0;
    /** Held sessions dropped for a delete on another host. */
    this.dropped = 0;
    store.backend.onRemoteChanges(() => this.take());
  }

  /** Takes what other hosts announced, and fetches the newer copies of sessions held here. */
  take() {
    const { store } = this;
    for (const change of store.backend.takeRemoteChanges()) {
      if (change.kind === 'subscribed') {
        this.subscribed = true;
        this.unchecked = store.sessions.values();
        continue;
      }
      if (change.kind === 'unsubscribed') {
        this.subscribed = false;
        // While Redis is down the store says so already.
        const log = store.backend.available ? store.logger.warn : store.logger.debug;
        log.call(
          store.logger,
          `(${store.name}) cannot subscribe to other hosts' changes (${change.reason}); retrying, and until then copies held here are refreshed only when a write of them is refused`,
        );
        continue;
      }
      const held = store.sessions.get(change.id);
      if (held === undefined) continue;
      // A copy stored (or imported) here after the delete is another session.
      if (!(change.version > versionOf(held))) continue;
      if (change.kind === 'deleted') this.drop(held);
      else this.due.set(held.id, versionOf(held));
    }
    this._fetch();
  }

  /**
   * Takes `json`, stored elsewhere as `version`, into the held copy, merged with what changed
   * here since its base. Returns the JSON the copy now holds, or undefined when `version` is not
   * newer than the copy's.
   */
  adopt(held, version, json) {
    if (!(version > versionOf(held))) return undefined;
    const { store } = this;
    const copy = storedCopyOf(json);
    const local = this._localChanges(held, copy.fingerprint);
    let result = json;
    if (local !== undefined) {
      // A copy this host wrote itself, whose outcome it did not learn (a write under way, or
      // one without a reply): what changed here is what changed since that write; merged
      // against the older base, a cookie set by that write and deleted since would come back.
      const base = ownWrite(held, copy.fingerprint)?.base || held.base;
      try {
        result = mergeSessions(base || null, local, json, Date.now());
        this.merged++;
      } catch (error) {
        store.logger.error(
          `(${store.name}) cannot merge ${held.id}, keeping this copy: ${error.message}`,
        );
        result = local;
      }
    }
    try {
      this._replace(held, result);
    } catch (error) {
      store.logger.error(
        `(${store.name}) cannot revive the copy of ${held.id} stored elsewhere: ${error.message}`,
      );
      return undefined;
    }
    held.version = version;
    held.base = copy.base;
    held.stored = copy.fingerprint;
    if (local === undefined) this.refreshed++;
    else store.unwritten.add(held);
    return result;
  }

  /** After writes were reported: fetches again what was deferred for them. */
  retryDeferred() {
    if (this.deferred.size === 0) return;
    const { store } = this;
    for (const held of this.deferred) {
      if (store.sessions.get(held.id) === held) this.due.set(held.id, versionOf(held));
    }
    this.deferred.clear();
    this._fetch();
  }

  /** Drops a held session deleted elsewhere, whatever changed here: the delete wins. */
  drop(held) {
    const { store } = this;
    if (store.sessions.get(held.id) !== held) return;
    store.logger.debug(`(${store.name}) ${held.id} was deleted by another host; dropping it`);
    store.forget(held);
    this.dropped++;
  }

  async _fetch() {
    if (this.stopped || this.fetching || (this.due.size === 0 && this.unchecked === null)) return;
    const { store } = this;
    this.fetching = true;
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
    const ids = batch.map(([id]) => id);
    const versions = batch.map(([, version]) => version);
    try {
      const copies = await store.backend.fetch(ids, versions);
      let deadline = performance.now() + SLICE_MS;
      let taken = 0;
      for (const copy of copies) {
        // Taking a copy in revives it, and merging serializes too: a batch of them at once
        // would hold the event loop for tens of milliseconds.
        if (taken++ === MAX_PER_SLICE || performance.now() >= deadline) {
          await new Promise((resolve) => setImmediate(resolve));
          if (this.stopped) return;
          deadline = performance.now() + SLICE_MS;
          taken = 1;
        }
        const held = store.sessions.get(copy.id);
        if (held === undefined) continue;
        // Until that write is reported, the base of this copy is not known: the one it was
        // loaded as, or what that write stores.
        if (store.backend.isWriting(held.id)) this.deferred.add(held);
        else if (copy.json === null) this.drop(held);
        else if (this.adopt(held, copy.version, copy.json) !== undefined) {
          if (store.unwritten.has(held)) store.changes.writeSoon(held);
        }
      }
    } catch (error) {
      // Asked for again later: nothing else would ask (a reply that came too late leaves the
      // connection up, so no new subscription checks them), and asking at once while Redis is
      // down would only fail the same way, batch after batch.
      for (const [id] of batch) {
        const held = store.sessions.get(id);
        if (held !== undefined && !this.due.has(id)) this.due.set(id, versionOf(held));
      }
      const log = this.failing ? store.logger.debug : store.logger.warn;
      log.call(
        store.logger,
        `(${store.name}) cannot fetch copies changed elsewhere, retrying: ${error.code} ${error.message}`,
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

  /** Stops retrying, for `close()`. */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  _retryLater() {
    if (this.stopped || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this._fetch();
    }, FETCH_RETRY_MS);
    this.retryTimer.unref();
  }

  /** The held copy's JSON when it changed since its base and differs from `newer`'s. */
  _localChanges(held, newer) {
    const changed = this.store.changedCopy(held, 'merge');
    return changed && changed.fingerprint !== newer ? changed.json : undefined;
  }

  /** Gives the held session the contents of `json`, keeping the object hammerhead holds. */
  _replace(held, json) {
    const { session } = held;
    const fresh = this.store.sessionClass.DeserializeSession(held.id, json);
    session.data = fresh.data;
    session.cookies.setJar(JSON.parse(json).serializedCookieJar);
  }
}

/** The merge base of a stored copy; undefined (merged as new) for one that cannot be read. */
function mergeBaseOf(json) {
  try {
    return new MergeBase(json);
  } catch {
    return undefined;
  }
}

/**
 * What a held session records of a stored copy: its merge base (as `mergeBaseOf`) and its
 * fingerprint, `fingerprint` when known already; both from one parse otherwise.
 */
function storedCopyOf(json, fingerprint) {
  if (fingerprint !== undefined) return { base: mergeBaseOf(json), fingerprint };
  try {
    const base = MergeBase.withFingerprint(json);
    return { base, fingerprint: base.fingerprint };
  } catch {
    return { base: undefined, fingerprint: changeFingerprint(json) };
  }
}

/**
 * The copy (as `storedCopyOf`) of the latest write of `held` whose outcome it has not learnt
 * with this fingerprint; undefined if none. `held.sent` keeps, newest last, either the copy or,
 * for a write that failed without a reply, its JSON, read here the first time it is needed.
 */
function ownWrite(held, fingerprint) {
  if (held.sent === null) return undefined;
  for (let i = held.sent.length - 1; i >= 0; i--) {
    if (typeof held.sent[i] === 'string') held.sent[i] = storedCopyOf(held.sent[i]);
    if (held.sent[i].fingerprint === fingerprint) return held.sent[i];
  }
  return undefined;
}

/** The version a held copy is based on; 0 for one created here and not stored yet. */
function versionOf(held) {
  return held.version || 0;
}

module.exports = { RemoteChanges, ownWrite, storedCopyOf, versionOf };
