// @ts-check
'use strict';

/** The interface every store implements; hammerhead uses it as `proxy.openSessions`. */
class RammerheadSessionAbstractStore {
  constructor() {
    if (new.target === RammerheadSessionAbstractStore) {
      throw new Error('abstract classes cannot be instantiated');
    }
  }

  /**
   * Makes this store the proxy's `openSessions`, closing the sessions the proxy held first
   * unless `removeExistingSessions` is false.
   */
  attachToProxy(proxy, removeExistingSessions = true) {
    if (proxy.openSessions === this) throw new TypeError('already attached to proxy');
    if (removeExistingSessions) {
      for (const [, session] of proxy.openSessions.entries()) {
        proxy.closeSession(session);
      }
    }
    proxy.openSessions = this;
  }

  keys() {
    throw new Error('keys() is not implemented');
  }

  has() {
    throw new Error('has() is not implemented');
  }

  get() {
    throw new Error('get() is not implemented');
  }

  add() {
    throw new Error('add() is not implemented');
  }

  delete() {
    throw new Error('delete() is not implemented');
  }

  addSerializedSession() {
    throw new Error('addSerializedSession() is not implemented');
  }

  close() {}
}

module.exports = { RammerheadSessionAbstractStore };
