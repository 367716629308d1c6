'use strict';

const { RammerheadSessionAbstractStore } = require('./abstract-store');
const { checkSession, checkSessionId } = require('../index.js');
const { removeExpired } = require('./expired-sessions');
const { HeldSessions } = require('./held-sessions');
const { useClock } = require('./coarse-clock');
const options = require('./options');
const { resolveSessionClass } = require('./session-class');

/**
 * Sessions in memory, lost when the process exits. Ids and sessions follow the same rules as in
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
    this.held = new HeldSessions();
    /** The Map of `held`, read directly by the hot path. */
    this.sessions = this.held.map;
    /** The running cleanup, so that a slow one is never overlapped by the next. */
    this.cleanup = null;
    this.releaseClock = useClock();
    this.interval = setInterval(() => this._removeStaleSessions(), this.cleanupInterval);
    this.interval.unref();
  }

  keys() {
    return Array.from(this.sessions.keys());
  }

  has(id) {
    if (this.sessions.has(id)) return true;
    options.requireString(id, 'id');
    return false;
  }

  get(id, updateActiveTimestamp = true) {
    const held = this.sessions.get(id);
    if (held !== undefined) {
      if (updateActiveTimestamp && held.isTouchDue()) this.held.touch(held);
      return held.session;
    }
    options.requireString(id, 'id');
    return undefined;
  }

  add(id) {
    options.requireString(id, 'id');
    checkSessionId(id);
    if (this.sessions.has(id)) throw new Error(`session ${id} already exists`);
    const session = new this.sessionClass({ id });
    this.held.hold(id, session);
    this.logger.debug(`(MemoryStore.add) added ${id}`);
    return session;
  }

  delete(id) {
    options.requireString(id, 'id');
    const held = this.sessions.get(id);
    return held !== undefined && this.held.drop(held);
  }

  addSerializedSession(id, serializedSession) {
    options.requireString(id, 'id');
    options.requireString(serializedSession, 'serializedSession');
    checkSessionId(id);
    const session = this.sessionClass.DeserializeSession(id, serializedSession);
    checkSession(serializedSession);
    session.updateLastUsed();
    this.held.hold(id, session);
    this.logger.debug(`(MemoryStore.addSerializedSession) added ${id}`);
  }

  /** Stops the cleanup timer. Sessions stay in memory until the process exits. */
  close() {
    clearInterval(this.interval);
    this.releaseClock();
  }

  /**
   * Removes expired sessions, named by the index, in slices of about a millisecond; resolves
   * when done.
   */
  _removeStaleSessions() {
    if (this.cleanup) return this.cleanup;
    const remove = (held) => {
      this.held.drop(held);
      this.logger.debug(`(MemoryStore._removeStaleSessions) removing ${held.id}`);
    };
    this.cleanup = removeExpired(this.held, Date.now(), this.staleTimeout, this.maxToLive, remove)
      .catch((error) => this.logger.error(`(MemoryStore._removeStaleSessions) ${error.message}`))
      .finally(() => {
        this.cleanup = null;
      });
    return this.cleanup;
  }
}

module.exports = { RammerheadSessionMemoryStore };
