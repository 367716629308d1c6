'use strict';

const { Session } = require('testcafe-hammerhead');

/**
 * A hammerhead session that persists like rammerhead's RammerheadSession: everything worth
 * keeping lives in `data`, the cookie jar is serialized beside it.
 */
class HammerheadSession extends Session {
  constructor({ id, dontConnectToData = false } = {}) {
    super([], { allowMultipleWindows: true, disablePageCaching: false });
    this.id = id;
    const injectable = this._injectable;
    this.data = {};
    if (!dontConnectToData) {
      const now = Date.now();
      this.data = {
        createdAt: now,
        lastUsed: now,
        injectable,
        externalProxySettings: null,
        shuffleDict: null,
      };
    }
  }

  // hammerhead reads and writes these on the session itself; they are kept in `data`.
  get injectable() {
    return this.data ? this.data.injectable : this._injectable;
  }
  set injectable(value) {
    if (this.data) this.data.injectable = value;
    else this._injectable = value;
  }
  get externalProxySettings() {
    return this.data ? this.data.externalProxySettings : null;
  }
  set externalProxySettings(value) {
    if (this.data) this.data.externalProxySettings = value;
  }
  get shuffleDict() {
    return this.data.shuffleDict;
  }
  set shuffleDict(value) {
    this.data.shuffleDict = value;
  }
  get createdAt() {
    return this.data.createdAt;
  }
  set createdAt(value) {
    this.data.createdAt = value;
  }
  get lastUsed() {
    return this.data.lastUsed;
  }
  set lastUsed(value) {
    this.data.lastUsed = value;
  }

  updateLastUsed() {
    this.data.lastUsed = Date.now();
  }

  serializeSession() {
    return JSON.stringify({ data: this.data, serializedCookieJar: this.cookies.serializeJar() });
  }

  static DeserializeSession(id, serializedSession) {
    const parsed = JSON.parse(serializedSession);
    if (!parsed || typeof parsed.data !== 'object' || parsed.data === null) {
      throw new Error('serialized session has no data object');
    }
    if (typeof parsed.serializedCookieJar !== 'string') {
      throw new Error('serialized session has no serializedCookieJar string');
    }
    const session = new HammerheadSession({ id, dontConnectToData: true });
    session.data = parsed.data;
    session.cookies.setJar(parsed.serializedCookieJar);
    return session;
  }

  // hammerhead's abstract hooks: a plain proxy needs no payload, credentials or handlers.
  async getIframePayloadScript() {
    return '';
  }
  async getPayloadScript() {
    return '';
  }
  getAuthCredentials() {
    return null;
  }
  handleFileDownload() {}
  handlePageError() {}
  handleAttachment() {}
}

module.exports = HammerheadSession;
