'use strict';

const { checkSessionId } = require('../index.js');
const { RammerheadSessionAbstractStore } = require('./abstract-store');
const { CacheCheck } = require('./cache-check');
const { removeExpired, hasExpired } = require('./expired-sessions');
const { HeldSessions } = require('./held-sessions');
const { useClock } = require('./coarse-clock');
const options = require('./options');

const CORRUPT = 'ERR_CORRUPT_SESSION';
/** Expired sessions whose stored copies one background task deletes. */
const REMOVAL_BATCH = 256;
/** Errors of `addSerializedSession` that are the input's fault, thrown as the original does. */
const REFUSED_INPUT = new Set(['ERR_INVALID_SESSION', 'ERR_SESSION_TOO_LARGE']);

function unsavedError(failures) {
  const list = failures.map((f) => `${f.id} (${f.code})`).join(', ');
  const error = new Error(`could not save ${failures.length} session(s): ${list}`);
  error.code = 'ERR_SESSIONS_NOT_SAVED';
  error.failures = failures;
  return error;
}

/**
 * Sessions held in memory while in use, in front of a backend that keeps them otherwise. The
 * hot path (`get`/`has` of a held session) is one Map lookup; everything that touches the
 * backend for long runs in the background or in slices of about a millisecond.
 *
 * A backend has these methods (`DirectoryBackend` is one): `ids(held)`, the stored ids but
 * those the native index `held` holds (every id, without it); `load(id)`,
 * the stored JSON or null, throwing with `code` (`ERR_CORRUPT_SESSION` for what is not a
 * session); `rejectLoaded(id)` and `removeCorrupt(id)` for a loaded copy that does not revive;
 * `saveNow(id, json)`, stored before it returns (returning the version stored, for backends
 * that keep versions, which also tell `loadedVersion`, the version `load` returned last);
 * `saveAllNow(ids, contents)`, returning the
 * failures by index; `queueWrites(ids, contents, settle)` in the background, with
 * `writesPending`, `isWriting(id)`, `whenWritten()` and the `onWritesReported` hook;
 * `remove(id)`, true when something was removed, throwing when it cannot be; `removeLater(ids)`
 * and `release(ids)` for sessions that leave memory; `sweep(now, staleTimeout, maxToLive,
 * removeCorrupt)`, deleting expired stored sessions in the background.
 */
class CachedStore extends RammerheadSessionAbstractStore {
  /**
   * @param {string} name the store's name in log messages
   * @param {object} settings parsed options
   * @param {object} backend
   */
  constructor(name, settings, backend) {
    super();
    this.name = name;
    this.logger = settings.logger;
    this.cacheTimeout = settings.cacheTimeout;
    this.cacheCheckInterval = settings.cacheCheckInterval;
    this.deleteUnused = settings.deleteUnused;
    this.deleteCorruptedSessions = settings.deleteCorruptedSessions;
    this.staleCleanupOptions = settings.staleCleanupOptions;
    this.sessionClass = settings.sessionClass;
    this.backend = backend;
    this.held = new HeldSessions();
    /** The Map of `held`, read directly by the hot path. */
    this.sessions = this.held.map;
    /** Held sessions whose stored copy may be missing or old: a cache check writes them. */
    this.unwritten = new Set();
    /** Ids dropped as expired whose stored copies are being deleted: absent. */
    this.removing = new Set();
    /** Imports that could not be stored at once and were kept in memory (see `stats()`). */
    this.keptInMemory = 0;
    /** The running cache check and stale cleanup, so that neither overlaps itself. */
    this.check = null;
    this.staleSweep = null;
    backend.onWritesReported = () => {
      if (this.check) this.check.onWritesReported();
    };

    this.releaseClock = useClock();
    this.cacheCheckTimer = setInterval(() => this.checkCache(), this.cacheCheckInterval);
    this.cacheCheckTimer.unref();
    if (this.staleCleanupOptions) {
      const { staleCheckInterval } = this.staleCleanupOptions;
      this.staleCheckTimer = setInterval(() => this.removeStaleSessions(), staleCheckInterval);
      this.staleCheckTimer.unref();
      this.removeStaleSessions();
    }
  }

  /** Sessions held in memory, by id: a copy, made at each read. */
  get cachedSessions() {
    return new Map(Array.from(this.sessions, ([id, held]) => [id, held.session]));
  }

  keys() {
    const ids = Array.from(this.sessions.keys());
    // The core leaves out the stored copies of most held sessions, listed already; those the
    // index does not list (being written before they leave memory) are left out here.
    for (const id of this.backend.ids(this.held.syncedIndex())) {
      if (!this.sessions.has(id) && !this.removing.has(id)) ids.push(id);
    }
    return ids;
  }

  /**
   * Held in memory, or stored and revivable: the stored copy is read and revived, as `get`
   * would, so a copy `get` cannot serve is not a session. It is not kept in memory; a corrupt
   * copy is left for `get` or the stale cleanup to report and delete.
   */
  has(id) {
    return this.sessions.has(id) || this._hasUncached(id);
  }

  get(id, updateActiveTimestamp = true) {
    const held = this.sessions.get(id);
    if (held === undefined) return this._getUncached(id, updateActiveTimestamp);
    if (held.leaving) this._takeBack(held);
    if (updateActiveTimestamp && held.isTouchDue()) this.touch(held);
    return held.session;
  }

  /** Stored in the background, starting at once; see `whenWritten()`. */
  add(id) {
    options.requireString(id, 'id');
    checkSessionId(id);
    if (this.has(id)) throw new Error(`session ${id} already exists`);
    const session = new this.sessionClass({ id });
    const json = session.serializeSession();
    this.removing.delete(id);
    const held = this.held.hold(id, session);
    this.unwritten.add(held);
    this.writeStaying(held, json);
    this.logger.debug(`(${this.name}.add) added ${id}`);
    return session;
  }

  /** Resolves once every background write started so far (by `add` and cache checks) is done. */
  whenWritten() {
    return this.backend.whenWritten();
  }

  /**
   * True once the session is gone for every reader. False when there was none, or when its
   * stored copy cannot be deleted: the error is logged with its code and the session stays.
   */
  delete(id) {
    options.requireString(id, 'id');
    let removed;
    try {
      removed = this.backend.remove(id);
    } catch (error) {
      this.logger.error(
        `(${this.name}.delete) cannot delete ${id}: ${error.code} ${error.message}`,
      );
      return false;
    }
    const held = this.sessions.get(id);
    const wasHeld = held !== undefined && this.forget(held);
    if (removed || wasHeld) this.logger.debug(`(${this.name}.delete) deleted ${id}`);
    return removed || wasHeld;
  }

  /**
   * Stores the given JSON before returning; it replaces any copy held in memory. Invalid input
   * throws. If it cannot be stored, the session is kept in memory (logged with its code), served
   * by this process and stored at the next cache check or at `close()`; other processes see it
   * only then.
   */
  addSerializedSession(id, serializedSession) {
    options.requireString(id, 'id');
    options.requireString(serializedSession, 'serializedSession');
    const session = this.sessionClass.DeserializeSession(id, serializedSession);
    const before = this.sessions.get(id);
    let version;
    try {
      version = this.backend.saveNow(id, serializedSession);
    } catch (error) {
      if (error.name === 'TypeError' || REFUSED_INPUT.has(error.code)) throw error;
      if (before !== undefined) this.forget(before);
      this.removing.delete(id);
      this.unwritten.add(this.held.hold(id, session));
      this.keptInMemory++;
      this.logger.error(
        `(${this.name}.addSerializedSession) cannot write ${id} yet, keeping it in memory: ${error.code} ${error.message}`,
      );
      return;
    }
    if (before !== undefined) this.forget(before);
    this.removing.delete(id);
    this.imported(id, session, serializedSession, version);
    this.logger.debug(`(${this.name}.addSerializedSession) added ${id}`);
  }

  /**
   * Stops the timers and stores every session held in memory before returning. Throws one error
   * listing the sessions that could not be saved, after trying all of them; those stay held.
   */
  close() {
    clearInterval(this.cacheCheckTimer);
    clearInterval(this.staleCheckTimer);
    this.releaseClock();
    const written = [];
    const contents = [];
    const failures = [];
    const dropped = [];
    for (const held of this.sessions.values()) {
      if (this.fate(held, true) === 'drop') {
        dropped.push(held);
        continue;
      }
      try {
        contents.push(held.session.serializeSession());
        written.push(held);
      } catch (error) {
        failures.push({ id: held.id, code: 'ERR_SERIALIZE', message: error.message });
      }
    }
    const ids = written.map((held) => held.id);
    // Writes still under way for these sessions are superseded: whatever they report, this one
    // decides.
    for (const held of written) held.writes++;
    const failed = new Set();
    for (const { index, code, message } of this.backend.saveAllNow(ids, contents)) {
      failures.push({ id: ids[index], code, message });
      failed.add(index);
    }
    written.forEach((held, index) => {
      if (!failed.has(index)) {
        this.forget(held);
        return;
      }
      // It stays, to be saved by a later close() or cache check.
      this.unconfirmed(held, contents[index]);
      this.unwritten.add(held);
      if (held.leaving) this._takeBack(held);
    });
    for (const held of dropped) this.forget(held);
    this.backend.release(dropped.map((held) => held.id));
    for (const f of failures) {
      this.logger.error(`(${this.name}.close) cannot save ${f.id}: ${f.code} ${f.message}`);
    }
    if (failures.length > 0) throw unsavedError(failures);
  }

  /**
   * Moves sessions idle for longer than cacheTimeout out of memory, stored first unless never
   * used, and stores those whose stored copy may be missing or old. Resolves when every write
   * has finished.
   */
  checkCache() {
    if (this.check) return this.check.done;
    this.check = new CacheCheck(this, Date.now());
    return this.check.start().finally(() => {
      this.check = null;
    });
  }

  /**
   * Deletes expired sessions: those held in memory judged by their live values, the stored ones
   * by the backend in the background. Resolves with the backend's summary.
   */
  removeStaleSessions() {
    if (this.staleSweep) return this.staleSweep;
    if (!this.staleCleanupOptions) return Promise.resolve(undefined);
    const { staleTimeout, maxToLive } = this.staleCleanupOptions;
    const now = Date.now();
    const stored = this.backend.sweep(now, staleTimeout, maxToLive, this.deleteCorruptedSessions);
    this.staleSweep = Promise.all([stored, this._expireHeld(now, staleTimeout, maxToLive)])
      .then(([summary]) => {
        this._logSweep(summary);
        return summary;
      })
      .catch((error) => {
        this.logger.error(`(${this.name}.removeStaleSessions) ${error.message}`);
        return undefined;
      })
      .finally(() => {
        this.staleSweep = null;
      });
    return this.staleSweep;
  }

  /**
   * A write of `json` for a held session failed, maybe without telling whether it was stored. A
   * store that tells its own stored copies from others' records it here; this one has no need.
   */
  unconfirmed() {}

  /**
   * What a cache check or `close()` does with a held session: `drop` it unstored, `write` it, or
   * `keep` it as it is. `leaving`: it is to leave memory (idle, or the store is closing).
   */
  fate(held, leaving) {
    if (leaving) return this._isUnused(held) ? 'drop' : 'write';
    return this.unwritten.has(held) ? 'write' : 'keep';
  }

  /**
   * Calls `updateLastUsed()` on a held session: when it is loaded, and from `get` at most once a
   * second per session.
   */
  touch(held) {
    this.held.touch(held);
  }

  /**
   * The stored copy of a held session is now `json` (loaded, or written while it stays), whose
   * fingerprint may be known already, stored as `version` by backends that keep versions. A
   * store that tells changes from what is stored records it here; this one has no need.
   */
  stored() {}

  /**
   * `addSerializedSession` stored `session` as `json` (as `version`, for backends that keep
   * versions). This store leaves it to be loaded when first used, as the original does.
   */
  imported() {}

  /**
   * A background write of a held session failed with `failure`; the session is marked
   * unwritten. True when the store dealt with the failure (it is not logged). This store has
   * no failures of its own.
   */
  writeRefused() {
    return false;
  }

  /**
   * What the store holds and how its writes fare: `held` sessions, `unwritten` ones (changed or
   * new, not stored yet), `writesPending` in the background, and `keptInMemory`, the imports
   * (`addSerializedSession`) that could not be stored at once and were kept in memory instead.
   */
  stats() {
    return {
      held: this.sessions.size,
      unwritten: this.unwritten.size,
      writesPending: this.backend.writesPending,
      keptInMemory: this.keptInMemory,
    };
  }

  /** The session's JSON, or undefined (logged) when it cannot be serialized now. */
  serialize(held, job) {
    try {
      return held.session.serializeSession();
    } catch (error) {
      this.logger.error(`(${this.name}.${job}) cannot serialize ${held.id}: ${error.message}`);
      return undefined;
    }
  }

  /**
   * Stores `json` in the background while the session stays held; `then()` once settled.
   * `fingerprint`: what `stored()` will be told of it, if already known.
   */
  writeStaying(held, json, then, fingerprint) {
    const write = ++held.writes;
    // The JSON is kept for `stored()` only when its fingerprint is not known: kept until the
    // write settles, a large session's text would outlive the young generation for nothing.
    const kept = fingerprint === undefined ? json : undefined;
    this.backend.queueWrites([held.id], [json], (id, failure, version) => {
      this._settleStaying(held, write, failure, kept, fingerprint, version);
      if (then) then();
    });
  }

  _settleStaying(held, write, failure, json, fingerprint, version) {
    // Replaced meanwhile (imported, or deleted): what was stored is not what is held. Written
    // again since: the later write decides.
    if (this.sessions.get(held.id) !== held || held.writes !== write) return;
    if (failure === undefined) {
      this.unwritten.delete(held);
      this.stored(held, json, fingerprint, version);
      return;
    }
    this.unwritten.add(held);
    if (this.writeRefused(held, failure)) return;
    this.logger.error(
      `(${this.name}) cannot write ${held.id} yet, keeping it in memory: ${failure.code} ${failure.message}`,
    );
  }

  // Out of has(), which stays small enough to be inlined into its callers.
  _hasUncached(id) {
    options.requireString(id, 'id');
    if (this.removing.has(id) || this._load(id, false) === undefined) return false;
    this.backend.release([id]);
    return true;
  }

  _getUncached(id, updateActiveTimestamp) {
    options.requireString(id, 'id');
    if (this.removing.has(id)) return undefined;
    const loaded = this._load(id);
    if (loaded === undefined) return undefined;
    const [session, json] = loaded;
    const held = this.held.hold(id, session);
    this.stored(held, json, undefined, this.backend.loadedVersion);
    if (updateActiveTimestamp) this.touch(held);
    return session;
  }

  /** A held session being stored before it leaves memory is in use again: it stays. */
  _takeBack(held) {
    held.leaving = false;
    this.held.setIndexed(held, true);
  }

  /**
   * Reads and revives a stored session: [session, its JSON], or undefined; never throws into the
   * caller's request handling. `report`: log what cannot be read, and delete what is corrupt if
   * so configured.
   */
  _load(id, report = true) {
    let json;
    try {
      json = this.backend.load(id);
    } catch (error) {
      if (!report) return undefined;
      if (error.code === CORRUPT) this._dropCorrupt(id, error);
      else
        this.logger.warn(
          `(${this.name}.get) cannot read session ${id}: ${error.code} ${error.message}`,
        );
      return undefined;
    }
    if (json === null) return undefined;
    try {
      return [this.sessionClass.DeserializeSession(id, json), json];
    } catch (error) {
      this.backend.rejectLoaded(id);
      if (report) this._dropCorrupt(id, error);
      return undefined;
    }
  }

  _dropCorrupt(id, error) {
    const action = this.deleteCorruptedSessions ? 'deleting it' : 'leaving it in place';
    this.logger.warn(`(${this.name}.get) session ${id} is corrupt, ${action}: ${error.message}`);
    if (!this.deleteCorruptedSessions) return;
    try {
      // Only the copy found corrupt: another process may have stored the session since.
      this.backend.removeCorrupt(id);
    } catch (removeError) {
      this.logger.warn(`(${this.name}.get) cannot delete corrupt ${id}: ${removeError.code}`);
    }
  }

  /** Drops a held session and what the store knew of it; false if it was not held. */
  forget(held) {
    this.unwritten.delete(held);
    return this.held.drop(held);
  }

  /**
   * Never used, as the original judges it (`lastUsed === createdAt`), and never returned by a
   * `get` that updates it: a first use in the millisecond of creation leaves the two equal, and
   * the next update may be a second away.
   */
  _isUnused(held) {
    return (
      this.deleteUnused &&
      held.session.lastUsed === held.session.createdAt &&
      !held.wasTouched() &&
      !this.unwritten.has(held)
    );
  }

  /**
   * Deletes expired held sessions, named by the index, in slices of about a millisecond. They
   * leave memory at once and are absent from then on; their stored copies are deleted in the
   * background, since one unlink can hold a thread for tens of milliseconds.
   */
  async _expireHeld(now, staleTimeout, maxToLive) {
    const removals = [];
    let batch = [];
    // Before the event loop runs again: a session stored under one of these ids afterwards is
    // a new one, which the deletion must not touch.
    const removeLater = () => {
      if (batch.length === 0) return;
      removals.push(this._removeLater(batch));
      batch = [];
    };
    const remove = (held) => {
      this.logger.debug(`(${this.name}.removeStaleSessions) deleting ${held.id}`);
      this.forget(held);
      this.removing.add(held.id);
      if (batch.push(held.id) === REMOVAL_BATCH) removeLater();
    };
    await removeExpired(this.held, now, staleTimeout, maxToLive, remove, removeLater);
    // Sessions being written out by a cache check are not in the index's answers.
    if (this.check) {
      for (const held of this.check.leavingSessions()) {
        if (hasExpired(held.session, now, staleTimeout, maxToLive)) remove(held);
      }
    }
    removeLater();
    await Promise.all(removals);
  }

  async _removeLater(ids) {
    const failures = await this.backend.removeLater(ids);
    for (const { id, code, message } of failures) {
      this.logger.error(
        `(${this.name}.removeStaleSessions) cannot delete ${id}: ${code} ${message}`,
      );
    }
    for (const id of ids) this.removing.delete(id);
  }

  _logSweep(summary) {
    const source = `(${this.name}.removeStaleSessions)`;
    for (const c of summary.corrupt) this.logger.warn(`${source} ${c.message}`);
    for (const u of summary.unreadable) this.logger.warn(`${source} ${u.code} ${u.message}`);
    for (const f of summary.failed) this.logger.error(`${source} cannot delete ${f.id}: ${f.code}`);
    this.logger.debug(
      `${source} checked ${summary.scanned} files, deleted ${summary.removed} stale and ` +
        `${summary.removedCorrupt} corrupt`,
    );
  }
}

module.exports = { CachedStore };
