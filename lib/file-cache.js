'use strict';

const { performance } = require('perf_hooks');
const { SessionDirectory, checkSessionId } = require('../index.js');
const { BackgroundWrites } = require('./background-writes');
const { RammerheadSessionAbstractStore } = require('./abstract-store');
const { removeExpired } = require('./expired-sessions');
const { useClock, isDue, touch, wasTouched } = require('./touch');
const options = require('./options');
const { resolveSessionClass, defaultSaveDirectory } = require('./session-class');

/** Longest stretch a cache check holds the event loop before it yields. */
const SLICE_MS = 1;
/** Sessions that may be waiting to be written before a cache check serializes more. */
const MAX_QUEUED = 1024;
const CORRUPT = 'ERR_CORRUPT_SESSION';
/** Expired sessions whose files one background task deletes. */
const REMOVAL_BATCH = 256;
/** Errors of `addSerializedSession` that are the input's fault, thrown as the original does. */
const REFUSED_INPUT = new Set(['ERR_INVALID_SESSION', 'ERR_SESSION_TOO_LARGE']);
/** Far above real sessions (cookies and synced localStorage); a guard against hostile files. */
const DEFAULT_MAX_SESSION_BYTES = 64 * 1024 * 1024;

function staleCleanup(value) {
  const defaults = { staleTimeout: 1000 * 60 * 60 * 24, maxToLive: 1000 * 60 * 60 * 24 * 4 };
  const interval = (v) =>
    options.interval('staleCleanupOptions.staleCheckInterval', v, 1000 * 60 * 60);
  if (value === null) return null;
  if (value === undefined) return { ...defaults, staleCheckInterval: interval(undefined) };
  if (typeof value !== 'object') {
    throw new TypeError('option staleCleanupOptions must be an object or null');
  }
  // As in the original, a limit left out of a given object is disabled.
  return {
    staleTimeout: options.limit('staleCleanupOptions.staleTimeout', value.staleTimeout, null),
    maxToLive: options.limit('staleCleanupOptions.maxToLive', value.maxToLive, null),
    staleCheckInterval: interval(value.staleCheckInterval),
  };
}

function unsavedError(failures) {
  const list = failures.map((f) => `${f.id} (${f.code})`).join(', ');
  const error = new Error(`could not save ${failures.length} session(s): ${list}`);
  error.code = 'ERR_SESSIONS_NOT_SAVED';
  error.failures = failures;
  return error;
}

/**
 * Sessions in memory while in use and in `<id>.rhfsession` files otherwise. Files are replaced
 * atomically; writes and stale cleanup run off the JavaScript thread.
 */
class RammerheadSessionFileCache extends RammerheadSessionAbstractStore {
  constructor(opts) {
    super();
    const o = options.readOptions(opts, 'RammerheadSessionFileCache');
    this.logger = options.logger(o.logger);
    this.cacheTimeout = options.interval('cacheTimeout', o.cacheTimeout, 1000 * 60 * 20);
    this.cacheCheckInterval = options.interval(
      'cacheCheckInterval',
      o.cacheCheckInterval,
      1000 * 60 * 10,
    );
    this.deleteUnused = options.boolean('deleteUnused', o.deleteUnused, true);
    this.deleteCorruptedSessions = options.boolean(
      'deleteCorruptedSessions',
      o.deleteCorruptedSessions,
      true,
    );
    this.durable = options.boolean('durable', o.durable, false);
    this.maxSessionBytes = options.byteCount(
      'maxSessionBytes',
      o.maxSessionBytes,
      DEFAULT_MAX_SESSION_BYTES,
    );
    this.staleCleanupOptions = staleCleanup(o.staleCleanupOptions);
    this.sessionClass = resolveSessionClass(options.sessionClass(o.sessionClass));
    this.saveDirectory = options.string('saveDirectory', o.saveDirectory, undefined);
    if (this.saveDirectory === undefined) this.saveDirectory = defaultSaveDirectory();
    this.directory = new SessionDirectory(this.saveDirectory, this.durable, this.maxSessionBytes);

    /** Sessions in use, by id: the hot path of `get` is one lookup here. */
    this.cachedSessions = new Map();
    /** Sessions being written before they leave memory; `get` takes them back. */
    this.flushingSessions = new Map();
    /**
     * Sessions whose file may be missing or old (made by `add` and not written yet, or their
     * write failed): a cache check writes them, even if never used or not idle.
     */
    this.unwritten = new Set();
    /** Sessions dropped as expired whose files are being deleted in the background: absent. */
    this.removing = new Set();
    this.writes = new BackgroundWrites(this.directory, () => this._afterWrites());
    /** The running cache check's state; `check.done` resolves when it ends. */
    this.check = null;
    this.staleSweep = null;

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

  keys() {
    const ids = new Set(this.directory.ids());
    for (const id of this.removing) ids.delete(id);
    for (const id of this.cachedSessions.keys()) ids.add(id);
    for (const id of this.flushingSessions.keys()) ids.add(id);
    return Array.from(ids);
  }

  has(id) {
    if (this.cachedSessions.has(id) || this.flushingSessions.has(id)) return true;
    options.requireString(id, 'id');
    return !this.removing.has(id) && this.directory.exists(id);
  }

  get(id, updateActiveTimestamp = true) {
    const session = this.cachedSessions.get(id);
    if (session !== undefined) {
      if (updateActiveTimestamp && isDue(session)) touch(session);
      return session;
    }
    return this._getUncached(id, updateActiveTimestamp);
  }

  _getUncached(id, updateActiveTimestamp) {
    options.requireString(id, 'id');
    if (this.removing.has(id)) return undefined;
    let session = this.flushingSessions.get(id);
    if (session !== undefined) {
      this.flushingSessions.delete(id);
    } else {
      session = this._loadSession(id);
      if (session === undefined) return undefined;
    }
    if (updateActiveTimestamp) touch(session);
    this.cachedSessions.set(id, session);
    return session;
  }

  /** Reads and revives a session file; never throws into the caller's request handling. */
  _loadSession(id) {
    let json;
    try {
      json = this.directory.load(id);
    } catch (error) {
      if (error.code === CORRUPT) this._dropCorrupt(id, error);
      else
        this.logger.warn(
          `(FileCache.get) cannot read session ${id}: ${error.code} ${error.message}`,
        );
      return undefined;
    }
    if (json === null) return undefined;
    try {
      return this.sessionClass.DeserializeSession(id, json);
    } catch (error) {
      this.directory.rejectLoaded(id);
      this._dropCorrupt(id, error);
      return undefined;
    }
  }

  _dropCorrupt(id, error) {
    const action = this.deleteCorruptedSessions ? 'deleting it' : 'leaving it in place';
    this.logger.warn(
      `(FileCache.get) session file of ${id} is corrupt, ${action}: ${error.message}`,
    );
    if (!this.deleteCorruptedSessions) return;
    try {
      // Only the file found corrupt: another process may have written the session since.
      this.directory.removeCorrupt(id);
    } catch (removeError) {
      this.logger.warn(`(FileCache.get) cannot delete corrupt ${id}: ${removeError.code}`);
    }
  }

  /** Its file is written in the background, started at once; see `whenWritten()`. */
  add(id) {
    options.requireString(id, 'id');
    checkSessionId(id);
    if (this.has(id)) throw new Error(`session ${id} already exists`);
    const session = new this.sessionClass({ id });
    this.writes.queue([id], [session.serializeSession()], (_, failure) =>
      this._settleUnwritten(id, session, failure),
    );
    this.cachedSessions.set(id, session);
    this.unwritten.add(id);
    this.removing.delete(id);
    this.logger.debug(`(FileCache.add) added ${id}`);
    return session;
  }

  /** Settles a write of `session` while it stays in memory (made by `add`, or retried). */
  _settleUnwritten(id, session, failure) {
    // Replaced meanwhile (imported, or deleted): what was written is not what is held.
    if (this.cachedSessions.get(id) !== session) return;
    if (failure === undefined) {
      this.unwritten.delete(id);
    } else {
      this.unwritten.add(id);
      this.logger.error(
        `(FileCache) cannot write ${id} yet, keeping it in memory: ${failure.code} ${failure.message}`,
      );
    }
  }

  /** Resolves once every file write started so far (by `add` and cache checks) has finished. */
  whenWritten() {
    return this.writes.whenIdle();
  }

  /**
   * True once the session is gone for every reader. False when there was none, or when its file
   * cannot be deleted: the error is logged with its code and the session stays as it was.
   */
  delete(id) {
    options.requireString(id, 'id');
    let removed;
    try {
      removed = this.directory.remove(id);
    } catch (error) {
      this.logger.error(`(FileCache.delete) cannot delete ${id}: ${error.code} ${error.message}`);
      return false;
    }
    const wasCached = this.cachedSessions.delete(id);
    const wasFlushing = this.flushingSessions.delete(id);
    this.unwritten.delete(id);
    if (removed || wasCached || wasFlushing) this.logger.debug(`(FileCache.delete) deleted ${id}`);
    return removed || wasCached || wasFlushing;
  }

  /**
   * Writes the given JSON as the session's file before returning; it replaces any copy held in
   * memory. Invalid input throws. If the file cannot be written, the session is kept in memory
   * (logged with its code), served by this process and written at the next cache check or at
   * `close()`; other processes see it only then.
   */
  addSerializedSession(id, serializedSession) {
    options.requireString(id, 'id');
    options.requireString(serializedSession, 'serializedSession');
    const session = this.sessionClass.DeserializeSession(id, serializedSession);
    try {
      this.directory.import(id, serializedSession, false);
    } catch (error) {
      if (error.name === 'TypeError' || REFUSED_INPUT.has(error.code)) throw error;
      this.flushingSessions.delete(id);
      this.cachedSessions.set(id, session);
      this.unwritten.add(id);
      this.removing.delete(id);
      this.logger.error(
        `(FileCache.addSerializedSession) cannot write ${id} yet, keeping it in memory: ${error.code} ${error.message}`,
      );
      return;
    }
    this.cachedSessions.delete(id);
    this.flushingSessions.delete(id);
    this.unwritten.delete(id);
    this.removing.delete(id);
    this.logger.debug(`(FileCache.addSerializedSession) added ${id}`);
  }

  /**
   * Stops the timers and writes every session held in memory before returning. Throws one error
   * listing the sessions that could not be saved, after trying all of them.
   */
  close() {
    clearInterval(this.cacheCheckTimer);
    clearInterval(this.staleCheckTimer);
    this.releaseClock();
    const ids = [];
    const contents = [];
    const failures = [];
    const dropped = [];
    for (const map of [this.flushingSessions, this.cachedSessions]) {
      for (const [id, session] of map) {
        if (this._isUnused(id, session)) {
          dropped.push(id);
          continue;
        }
        try {
          contents.push(session.serializeSession());
          ids.push(id);
        } catch (error) {
          failures.push({ id, code: 'ERR_SERIALIZE', message: error.message });
        }
      }
    }
    for (const { index, code, message } of this.directory.writeNow(ids, contents)) {
      failures.push({ id: ids[index], code, message });
    }
    this.directory.release(dropped);
    const failed = new Set(failures.map((f) => f.id));
    for (const map of [this.flushingSessions, this.cachedSessions]) {
      for (const id of map.keys()) {
        if (failed.has(id)) continue;
        map.delete(id);
        this.unwritten.delete(id);
      }
    }
    for (const f of failures) {
      this.logger.error(`(FileCache.close) cannot save ${f.id}: ${f.code} ${f.message}`);
    }
    if (failures.length > 0) throw unsavedError(failures);
  }

  /**
   * Never used, as the original judges it (`lastUsed === createdAt`), and never returned by a
   * `get` that updates it: a first use in the millisecond of creation leaves the two equal, and
   * the next update may be a second away.
   */
  _isUnused(id, session) {
    return (
      this.deleteUnused &&
      session.lastUsed === session.createdAt &&
      !wasTouched(session) &&
      !this.unwritten.has(id)
    );
  }

  /**
   * Moves sessions idle for longer than cacheTimeout out of memory: serialized in slices of at
   * most SLICE_MS, written in the background, then dropped unless used again meanwhile. Resolves
   * when every write has finished.
   */
  checkCache() {
    if (this.check) return this.check.done;
    const check = {
      now: Date.now(),
      entries: this.cachedSessions.entries(),
      // Sessions that failed during this check go back to memory; they wait for the next one.
      retryLater: new Set(),
      // Queued for writing: id -> the session object whose contents were queued.
      queued: new Map(),
      // Sessions written while they stay in memory (their file may be missing or old).
      retrying: new Set(),
      // Written and out of memory; released in one call per report.
      released: [],
      sliced: false,
      paused: false,
      settle: null,
      finish: null,
      done: null,
    };
    check.settle = (id, failure) => this._settleFlush(check, id, failure);
    check.done = new Promise((resolve) => {
      check.finish = () => {
        this.check = null;
        resolve();
      };
    });
    this.check = check;
    this._sliceCheck(check);
    return check.done;
  }

  /** Ends the check once every session is serialized and every write of it has settled. */
  _finishIfWritten(check) {
    if (check.sliced && check.queued.size === 0 && check.retrying.size === 0) check.finish();
  }

  _sliceCheck(check) {
    // Serializing outruns most disks; waiting here bounds what the check holds in memory.
    if (this.writes.size >= MAX_QUEUED) {
      check.paused = true;
      return;
    }
    check.sliced = this._flushSlice(check);
    if (check.sliced) this._finishIfWritten(check);
    else setImmediate(() => this._sliceCheck(check));
  }

  _flushSlice(check) {
    const deadline = performance.now() + SLICE_MS;
    const ids = [];
    const contents = [];
    const dropped = [];
    for (let n = 1; ; n++) {
      const next = check.entries.next();
      if (next.done) break;
      const [id, session] = next.value;
      const idle = check.now - session.lastUsed > this.cacheTimeout;
      if (check.retryLater.has(id) || check.queued.has(id)) {
        // It failed during this check, or was taken back while its write is under way (and met
        // again at the map's end): it waits for the next check.
      } else if (!idle) {
        if (this.unwritten.has(id) && !this.writes.isPending(id)) {
          this._retryWrite(id, session, check);
        }
      } else if (this._isUnused(id, session)) {
        this.cachedSessions.delete(id);
        dropped.push(id);
      } else {
        const json = this._serialize(id, session, check);
        if (json !== undefined) {
          this.cachedSessions.delete(id);
          this.flushingSessions.set(id, session);
          check.queued.set(id, session);
          ids.push(id);
          contents.push(json);
        }
        // Serializing is the costly step, so the clock is read after each one.
        if (performance.now() > deadline) return this._queue(check, ids, contents, dropped);
      }
      if (n % 64 === 0 && performance.now() > deadline) {
        return this._queue(check, ids, contents, dropped);
      }
    }
    this._queue(check, ids, contents, dropped);
    return true;
  }

  /** Writes a session that stays in memory because its file may be missing or old. */
  _retryWrite(id, session, check) {
    const json = this._serialize(id, session, check);
    if (json === undefined) return;
    check.retrying.add(id);
    this.writes.queue([id], [json], (_, failure) => {
      check.retrying.delete(id);
      this._settleUnwritten(id, session, failure);
    });
  }

  _serialize(id, session, check) {
    try {
      return session.serializeSession();
    } catch (error) {
      this.logger.error(`(FileCache.checkCache) cannot serialize ${id}: ${error.message}`);
      check.retryLater.add(id);
      return undefined;
    }
  }

  /** Hands a slice's sessions to the native side, which copies them out of the JS heap. */
  _queue(check, ids, contents, dropped) {
    if (dropped.length > 0) this.directory.release(dropped);
    if (ids.length > 0) this.writes.queue(ids, contents, check.settle);
    return false;
  }

  _settleFlush(check, id, failure) {
    const session = check.queued.get(id);
    check.queued.delete(id);
    if (session === undefined) return;
    // Taken back by get(), deleted or replaced meanwhile: nothing left to do here.
    if (this.flushingSessions.get(id) !== session) return;
    this.flushingSessions.delete(id);
    if (failure === undefined) {
      this.unwritten.delete(id);
      check.released.push(id);
      return;
    }
    // Kept in memory and retried at the next check, so nothing is lost.
    this.cachedSessions.set(id, session);
    this.unwritten.add(id);
    check.retryLater.add(id);
    this.logger.error(
      `(FileCache.checkCache) cannot save ${id}, keeping it in memory: ${failure.code} ${failure.message}`,
    );
  }

  _afterWrites() {
    const check = this.check;
    if (check === null) return;
    if (check.released.length > 0) this.directory.release(check.released.splice(0));
    if (check.paused && this.writes.size < MAX_QUEUED / 2) {
      check.paused = false;
      setImmediate(() => this._sliceCheck(check));
    } else {
      this._finishIfWritten(check);
    }
  }

  /**
   * Deletes expired sessions: those in memory judged by their live values, the files by their
   * timestamps in the background. Resolves with the sweep's summary.
   */
  removeStaleSessions() {
    if (this.staleSweep) return this.staleSweep;
    if (!this.staleCleanupOptions) return Promise.resolve(undefined);
    const { staleTimeout, maxToLive } = this.staleCleanupOptions;
    const now = Date.now();
    const files = this.directory.sweep(now, staleTimeout, maxToLive, this.deleteCorruptedSessions);
    this.staleSweep = Promise.all([files, this._expireHeldSessions(now, staleTimeout, maxToLive)])
      .then(([summary]) => {
        this._logSweep(summary);
        return summary;
      })
      .catch((error) => {
        this.logger.error(`(FileCache.removeStaleSessions) ${error.message}`);
        return undefined;
      })
      .finally(() => {
        this.staleSweep = null;
      });
    return this.staleSweep;
  }

  /**
   * Deletes expired sessions held in memory, in slices of about a millisecond. They leave memory
   * at once and are absent from then on; their files are deleted in the background, since one
   * unlink can hold a thread for tens of milliseconds.
   */
  async _expireHeldSessions(now, staleTimeout, maxToLive) {
    const removals = [];
    let batch = [];
    const removeLater = () => {
      const ids = batch;
      batch = [];
      removals.push(this._removeLater(ids));
    };
    const remove = (id) => {
      this.logger.debug(`(FileCache.removeStaleSessions) deleting ${id}`);
      this.cachedSessions.delete(id);
      this.flushingSessions.delete(id);
      this.unwritten.delete(id);
      this.removing.add(id);
      if (batch.push(id) === REMOVAL_BATCH) removeLater();
    };
    for (const map of [this.cachedSessions, this.flushingSessions]) {
      await removeExpired(map, now, staleTimeout, maxToLive, remove);
    }
    if (batch.length > 0) removeLater();
    await Promise.all(removals);
  }

  async _removeLater(ids) {
    const failures = await this.directory.removeLater(ids);
    for (const { index, code, message } of failures) {
      this.logger.error(
        `(FileCache.removeStaleSessions) cannot delete ${ids[index]}: ${code} ${message}`,
      );
    }
    for (const id of ids) this.removing.delete(id);
  }

  _logSweep(summary) {
    const source = '(FileCache.removeStaleSessions)';
    for (const c of summary.corrupt) this.logger.warn(`${source} ${c.message}`);
    for (const u of summary.unreadable) this.logger.warn(`${source} ${u.code} ${u.message}`);
    for (const f of summary.failed) this.logger.error(`${source} cannot delete ${f.id}: ${f.code}`);
    this.logger.debug(
      `${source} checked ${summary.scanned} files, deleted ${summary.removed} stale and ` +
        `${summary.removedCorrupt} corrupt`,
    );
  }
}

module.exports = { RammerheadSessionFileCache };
