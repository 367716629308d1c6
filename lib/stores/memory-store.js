// @ts-check
'use strict';

const { checkSession, checkSessionId } = require('../../index.js');
const { useClock } = require('../cache/coarse-clock');
const { removeExpired } = require('../cache/expiry');
const { Cause, HeldSessions } = require('../cache/held-sessions');
const { Housekeeper } = require('../cache/housekeeper');
const { RammerheadSessionAbstractStore } = require('../api/abstract-store');
const { requireString } = require('../api/errors');
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
    this.housekeeper = new Housekeeper();
    this.held = new HeldSessions(this.housekeeper, this.logger, 'MemoryStore');
    /** The Map of `held`, read directly by the hot path. */
    this.sessions = this.held.map;
    /** The running cleanup, so that a slow one is never overlapped by the next. */
    this.cleanup = null;
    this.releaseClock = useClock();
    this.housekeeper.every(this.cleanupInterval, () => this._removeStaleSessions());
  }

  keys() {
    return Array.from(this.sessions.keys());
  }

  has(id) {
    if (this.sessions.has(id)) return true;
    requireString(id, 'id');
    return false;
  }

  get(id, updateActiveTimestamp = true) {
    const held = this.sessions.get(id);
    if (held !== undefined) {
      if (updateActiveTimestamp && held.isTouchDue()) this.held.touch(held);
      return held.session;
    }
    requireString(id, 'id');
    return undefined;
  }

  add(id) {
    requireString(id, 'id');
    checkSessionId(id);
    if (this.sessions.has(id)) throw new Error(`session ${id} already exists`);
    const session = new this.sessionClass({ id });
    this.held.hold(id, session);
    this.logger.debug(`(MemoryStore.add) added ${id}`);
    return session;
  }

  delete(id) {
    requireString(id, 'id');
    const held = this.sessions.get(id);
    return held !== undefined && this.held.drop(held, Cause.DELETED);
  }

  addSerializedSession(id, serializedSession) {
    requireString(id, 'id');
    requireString(serializedSession, 'serializedSession');
    checkSessionId(id);
    const session = this.sessionClass.DeserializeSession(id, serializedSession);
    checkSession(serializedSession);
    session.updateLastUsed();
    this.held.hold(id, session);
    this.logger.debug(`(MemoryStore.addSerializedSession) added ${id}`);
  }

  /** Stops the cleanup timer. Sessions stay in memory until the process exits. */
  close() {
    this.housekeeper.stop();
    this.releaseClock();
  }

  /** Removes expired sessions, named by the index, in slices; resolves when done. */
  _removeStaleSessions() {
    if (this.cleanup) return this.cleanup;
    const policy = { staleTimeout: this.staleTimeout, maxToLive: this.maxToLive };
    const remove = (held) => this.held.drop(held, Cause.EXPIRED);
    this.cleanup = removeExpired(this.held, this.housekeeper, Date.now(), policy, remove)
      .catch((error) => this.logger.error(`(MemoryStore._removeStaleSessions) ${error.message}`))
      .finally(() => {
        this.cleanup = null;
      });
    return this.cleanup;
  }
}

module.exports = { RammerheadSessionMemoryStore };
