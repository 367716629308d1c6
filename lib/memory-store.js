'use strict';

const { RammerheadSessionAbstractStore } = require('./abstract-store');
const { expiredSessionIds } = require('./expired-sessions');
const options = require('./options');
const { resolveSessionClass } = require('./session-class');

/** Sessions in a Map, lost when the process exits. */
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
      if (updateActiveTimestamp) session.updateLastUsed();
      return session;
    }
    options.requireString(id, 'id');
    return undefined;
  }

  add(id) {
    options.requireString(id, 'id');
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
    const session = this.sessionClass.DeserializeSession(id, serializedSession);
    session.updateLastUsed();
    this.mapStore.set(id, session);
    this.logger.debug(`(MemoryStore.addSerializedSession) added ${id}`);
  }

  /** Stops the cleanup timer. Sessions stay in memory until the process exits. */
  close() {
    clearInterval(this.interval);
  }

  _removeStaleSessions() {
    const entries = Array.from(this.mapStore);
    const expired = expiredSessionIds(entries, Date.now(), this.staleTimeout, this.maxToLive);
    for (const id of expired) {
      this.mapStore.delete(id);
      this.logger.debug(`(MemoryStore._removeStaleSessions) removing ${id}`);
    }
  }
}

module.exports = { RammerheadSessionMemoryStore };
