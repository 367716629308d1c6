'use strict';

const { MergeBase, changeFingerprint, mergeSessions } = require('../index.js');

/** Sessions whose newer copies one fetch asks for: one script call stays short. */
const FETCH_BATCH = 256;

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
        this.unchecked = store.sessions.values();
        continue;
      }
      if (change.kind === 'unsubscribed') {
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
    const local = this._localChanges(held);
    let result = json;
    if (local !== undefined) {
      try {
        result = mergeSessions(held.base || null, local, json, Date.now());
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
    const copy = storedCopyOf(json);
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
    if (this.fetching || (this.due.size === 0 && this.unchecked === null)) return;
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
      for (const copy of await store.backend.fetch(ids, versions)) {
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
      store.logger.warn(
        `(${store.name}) cannot fetch copies changed elsewhere: ${error.code} ${error.message}`,
      );
      // The connection made again subscribes again, which checks every held version: asking
      // for the rest now would only fail the same way, batch after batch.
      if (error.code === 'ERR_REDIS_UNAVAILABLE') {
        this.due.clear();
        this.unchecked = null;
      }
    } finally {
      this.fetching = false;
    }
    this._fetch();
  }

  /** The held copy's JSON when it changed since its base. */
  _localChanges(held) {
    const changed = this.store.changedCopy(held, 'merge');
    return changed ? changed.json : undefined;
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

/** The version a held copy is based on; 0 for one created here and not stored yet. */
function versionOf(held) {
  return held.version || 0;
}

module.exports = { RemoteChanges, storedCopyOf, versionOf };
