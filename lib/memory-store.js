'use strict';

const { RammerheadSessionAbstractStore } = require('./abstract-store');
const { checkSession, checkSessionId } = require('../index.js');
const { removeExpired } = require('./expired-sessions');
const { useClock, isDue, touch } = require('./touch');
const options = require('./options');
const { resolveSessionClass } = require('./session-class');

/**
 * Sessions in a Map, lost when the process exits. Ids and sessions follow the same rules as in
 * the FileCache, so sessions move between the stores unchanged.
 */
class RammerheadSessionMemoryStore extends RammerheadSessionAbstractStore {
  constructor(opts) {
    super();
    const o = options.readOptions(opts, 'RammerheadSessionMemoryStore');
    this.logger = options.logger(o.logger);
    this.staleTimeout = options.limit('staleTimeout', o.staleTimeout, 1000 * 60 * 30);
    this.maxToLive = options.limit('maxToLive', o.maxToLive, 1000 * 60 * 60 * 4);
    this.cleanupInterval = options.interval('cleanupInterval', o.cleanupInterval, 1000 * 60);
    this.sessionClass = resolveSessionClass(options.sessionClass(o.sessionClass));
    this.mapStore = new Map();
    /** The running cleanup, so that a slow one is never overlapped by the next. */
    this.cleanup = null;
    this.releaseClock = useClock();
    this.interval = setInterval(() => this._removeStaleSessions(), this.cleanupInterval);
    this.interval.unref();
  }

  keys() {
    return Array.from(this.mapStore.keys());
  }

  has(id) {
    if (this.mapStore.has(id)) return true;
    options.requireString(id, 'id');
    return false;
  }

  get(id, updateActiveTimestamp = true) {
    const session = this.mapStore.get(id);
    if (session !== undefined) {
      if (updateActiveTimestamp && isDue(session)) touch(session);
      return session;
    }
    options.requireString(id, 'id');
    return undefined;
  }

  add(id) {
    options.requireString(id, 'id');
    checkSessionId(id);
    if (this.mapStore.has(id)) throw new Error(`session ${id} already exists`);
    const session = new this.sessionClass({ id });
    this.mapStore.set(id, session);
    this.logger.debug(`(MemoryStore.add) added ${id}`);
    return session;
  }

  delete(id) {
    options.requireString(id, 'id');
    return this.mapStore.delete(id);
  }

  addSerializedSession(id, serializedSession) {
    options.requireString(id, 'id');
    options.requireString(serializedSession, 'serializedSession');
    checkSessionId(id);
    const session = this.sessionClass.DeserializeSession(id, serializedSession);
    checkSession(serializedSession);
    session.updateLastUsed();
    this.mapStore.set(id, session);
    this.logger.debug(`(MemoryStore.addSerializedSession) added ${id}`);
  }

  /** Stops the cleanup timer. Sessions stay in memory until the process exits. */
  close() {
    clearInterval(this.interval);
    this.releaseClock();
  }

  /** Removes expired sessions in slices of about a millisecond; resolves when done. */
  _removeStaleSessions() {
    if (this.cleanup) return this.cleanup;
    const remove = (id) => {
      this.mapStore.delete(id);
      this.logger.debug(`(MemoryStore._removeStaleSessions) removing ${id}`);
    };
    this.cleanup = removeExpired(
      this.mapStore,
      Date.now(),
      this.staleTimeout,
      this.maxToLive,
      remove,
    )
      .catch((error) => this.logger.error(`(MemoryStore._removeStaleSessions) ${error.message}`))
      .finally(() => {
        this.cleanup = null;
      });
    return this.cleanup;
  }
}

module.exports = { RammerheadSessionMemoryStore };
