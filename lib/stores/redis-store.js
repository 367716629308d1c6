// @ts-check
'use strict';

const { RedisBackend, redacted } = require('../backends/redis-backend');
const { CachedStore } = require('../cache/cached-store');
const { ChangeWriter } = require('../redis/change-writer');
const { RemoteChanges } = require('../redis/remote-changes');
const { RequestSync } = require('../redis/request-sync');
const { VersionedCopies } = require('../redis/versioned-copies');
const options = require('./options');

const DEFAULT_URL = 'redis://127.0.0.1:6379';
/** Turns TLS certificate checks off when `tlsInsecure` is not given (see the README). */
const TLS_INSECURE_VARIABLE = 'RAMMERHEAD_SESSION_TLS_INSECURE';

/** The options of the Redis store, validated; rammerhead's FileCache options are accepted. */
function settingsOf(opts) {
  const o = options.readOptions(opts, 'RammerheadSessionRedisStore');
  return {
    ...options.cachedStoreSettings(o),
    redisUrl: options.string('redisUrl', o.redisUrl, process.env.REDIS_URL || DEFAULT_URL),
    keyPrefix: options.string('keyPrefix', o.keyPrefix, 'rammerhead:'),
    tlsCa: options.certificates('tlsCa', o.tlsCa),
    tlsInsecure:
      o.tlsInsecure === undefined
        ? options.environmentFlag(TLS_INSECURE_VARIABLE)
        : options.boolean('tlsInsecure', o.tlsInsecure, false),
    commandTimeout: options.interval('commandTimeout', o.commandTimeout, 500),
    connectTimeout: options.interval('connectTimeout', o.connectTimeout, 2000),
    writeInterval: options.interval('writeInterval', o.writeInterval, 1000),
    syncEachRequest: options.boolean('syncEachRequest', o.syncEachRequest, true),
    syncTimeout: options.interval('syncTimeout', o.syncTimeout, 25),
    saveDirectory: o.saveDirectory,
  };
}

/**
 * Sessions in memory while in use and in Redis, shared by every process and host on the same
 * Redis and key prefix. Changes reach Redis within about `writeInterval`, cookie changes within
 * milliseconds; expiry is Redis's own.
 */
class RammerheadSessionRedisStore extends CachedStore {
  constructor(opts) {
    const settings = settingsOf(opts);
    const backend = new RedisBackend(settings);
    const copies = new VersionedCopies({
      name: 'RedisStore',
      logger: settings.logger,
      sessionClass: settings.sessionClass,
      onCookieChange: (held) => this.changes.writeSoon(held),
    });
    super('RedisStore', settings, backend, copies);
    this.redisUrl = redacted(settings.redisUrl);
    this.tlsInsecure = settings.tlsInsecure;
    if (this.tlsInsecure) {
      this.logger.warn(
        `(${this.name}) TLS certificate checks are off (tlsInsecure): whoever can intercept the connection to ${this.redisUrl} can read and change every session`,
      );
    }
    this.keyPrefix = settings.keyPrefix;
    this.commandTimeout = settings.commandTimeout;
    this.connectTimeout = settings.connectTimeout;
    this.writeInterval = settings.writeInterval;
    if (settings.saveDirectory !== undefined) {
      this.logger.debug(`(${this.name}) saveDirectory has no meaning for Redis; ignoring it`);
    }
    if (!backend.available) {
      const why = backend.unavailableBecause;
      this.logger.warn(`(${this.name}) cannot use ${this.redisUrl} yet (${why}); retrying`);
    }
    this.changes = new ChangeWriter(this.view, backend, copies, this.staleCleanupOptions);
    this.remote = new RemoteChanges(this.view, backend, copies);
    this.syncEachRequest = settings.syncEachRequest;
    this.syncTimeout = settings.syncTimeout;
    this.requests = new RequestSync(this.view, backend, this.remote, this.changes, {
      eachRequest: this.syncEachRequest,
      timeout: this.syncTimeout,
    });
    this.housekeeper.every(this.writeInterval, () => this.writeChanges());
  }

  /**
   * Writes the held sessions changed since they were stored (and, after Redis lost its data,
   * all of them), and refreshes the expiry of those in use. Runs every `writeInterval`;
   * resolves once the writes are handed over (`whenWritten()` waits for them).
   */
  writeChanges() {
    return this.changes.run();
  }
}

module.exports = { RammerheadSessionRedisStore, TLS_INSECURE_VARIABLE };
