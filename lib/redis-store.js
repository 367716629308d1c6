'use strict';

const { changeFingerprint } = require('../index.js');
const { CachedStore } = require('./cached-store');
const { ChangeWriter } = require('./change-writer');
const options = require('./options');
const { RedisBackend, redacted } = require('./redis-backend');

const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** The options of the Redis store, validated; rammerhead's FileCache options are accepted. */
function settingsOf(opts) {
  const o = options.readOptions(opts, 'RammerheadSessionRedisStore');
  return {
    ...options.cachedStoreSettings(o),
    redisUrl: options.string('redisUrl', o.redisUrl, process.env.REDIS_URL || DEFAULT_URL),
    keyPrefix: options.string('keyPrefix', o.keyPrefix, 'rammerhead:'),
    tlsCa: options.certificates('tlsCa', o.tlsCa),
    commandTimeout: options.interval('commandTimeout', o.commandTimeout, 500),
    connectTimeout: options.interval('connectTimeout', o.connectTimeout, 2000),
    writeInterval: options.interval('writeInterval', o.writeInterval, 1000),
    saveDirectory: o.saveDirectory,
  };
}

/**
 * Sessions in memory while in use and in Redis, shared by every process and host on the same
 * Redis and key prefix. Changes reach Redis within about `writeInterval`; expiry is Redis's own.
 */
class RammerheadSessionRedisStore extends CachedStore {
  constructor(opts) {
    const settings = settingsOf(opts);
    super('RedisStore', settings, new RedisBackend(settings));
    this.redisUrl = redacted(settings.redisUrl);
    this.keyPrefix = settings.keyPrefix;
    this.commandTimeout = settings.commandTimeout;
    this.connectTimeout = settings.connectTimeout;
    this.writeInterval = settings.writeInterval;
    this.maxSessionBytes = settings.maxSessionBytes;
    if (settings.saveDirectory !== undefined) {
      this.logger.debug(`(${this.name}) saveDirectory has no meaning for Redis; ignoring it`);
    }
    if (!this.backend.available) {
      const why = this.backend.unavailableBecause;
      this.logger.warn(`(${this.name}) cannot reach ${this.redisUrl} yet (${why}); retrying`);
    }
    this.changes = new ChangeWriter(this);
    this.changeTimer = setInterval(() => this.writeChanges(), this.writeInterval);
    this.changeTimer.unref();
  }

  /**
   * Writes the held sessions changed since they were stored (and, after Redis lost its data,
   * all of them), and refreshes the expiry of those in use. Runs every `writeInterval`;
   * resolves once the writes are handed over (`whenWritten()` waits for them).
   */
  writeChanges() {
    return this.changes.run();
  }

  /**
   * Stops the timers and stores every changed session before returning, then disconnects; see
   * CachedStore. When some cannot be stored it throws and stays connected, so that a later
   * `close()` can store them.
   */
  close() {
    clearInterval(this.changeTimer);
    super.close();
    this.backend.close();
  }

  /** Also: `available` (Redis reachable) and `connects` (connections made so far). */
  stats() {
    return {
      ...super.stats(),
      available: this.backend.available,
      connects: this.backend.connects,
    };
  }

  touch(held) {
    super.touch(held);
    this.changes.used(held);
  }

  stored(held, json, fingerprint = changeFingerprint(json)) {
    held.stored = fingerprint;
  }

  /**
   * An imported session is held at once: the process that made it (rammerhead's `/newsession`)
   * is the one its browser comes back to, which then serves it while Redis is unreachable and
   * writes it back if Redis loses its data. Unused, it leaves memory without a write.
   */
  imported(id, session, json) {
    this.stored(this.held.hold(id, session), json);
  }

  /** An unchanged session leaves memory without a write. */
  fate(held, leaving) {
    if (leaving && this._isUnchanged(held)) return 'drop';
    return super.fate(held, leaving);
  }

  _isUnchanged(held) {
    if (held.stored === undefined || this.unwritten.has(held)) return false;
    if (this.backend.isWriting(held.id)) return false;
    const json = this.serialize(held, 'checkCache');
    return json !== undefined && changeFingerprint(json) === held.stored;
  }
}

module.exports = { RammerheadSessionRedisStore };
