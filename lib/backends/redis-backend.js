// @ts-check
'use strict';

const { RedisSessions } = require('../../index.js');
const { QueuedWritesBackend, writeResults } = require('./background-writes');
const { splitIdList } = require('./id-list');

/** @typedef {import('./contract').SessionBackend} SessionBackend */

/**
 * Sessions under one key prefix on Redis, through the core's `RedisSessions`. Every change runs
 * in the order it was asked for; while Redis cannot be reached, every call fails at once with
 * `ERR_REDIS_UNAVAILABLE` and the connection is made again in the background. Besides the
 * backend contract, what the Redis store's helpers use: other stores' announcements, fetches of
 * newer copies, expiry refreshes and the data set's token.
 *
 * @implements {SessionBackend}
 */
class RedisBackend extends QueuedWritesBackend {
  /**
   * @param {{ redisUrl: string, keyPrefix: string, commandTimeout: number,
   *   connectTimeout: number, maxSessionBytes: number, tlsCa?: string,
   *   tlsInsecure?: boolean, codec?: { compression: string, keys: Buffer[] } }} settings
   */
  constructor(settings) {
    const redis = new RedisSessions({
      url: settings.redisUrl,
      keyPrefix: settings.keyPrefix,
      commandTimeout: settings.commandTimeout,
      connectTimeout: settings.connectTimeout,
      maxSessionBytes: settings.maxSessionBytes,
      tlsCa: settings.tlsCa,
      tlsInsecure: settings.tlsInsecure,
      codec: settings.codec,
    });
    super(redis, (items) => redis.queueWrites(...columns(items)));
    this.redis = redis;
  }

  /** Whether Redis is reachable, as far as the last command and reconnection know. */
  get available() {
    return this.redis.available;
  }

  /** Why Redis cannot be reached, while it cannot (else null). */
  get unavailableBecause() {
    return this.redis.unavailableBecause;
  }

  /** Calls `wake()` when other stores' changes arrive; see `takeRemoteChanges()`. */
  onRemoteChanges(wake) {
    this.redis.onRemoteChanges(wake);
  }

  /** Other stores' writes and deletes announced since the last call: `{ kind, id, version }`. */
  takeRemoteChanges() {
    return this.redis.takeRemoteChanges();
  }

  /**
   * The stored copies newer than `versions[i]` of `ids[i]`: `{ id, version, json }`, json absent
   * when deleted since.
   */
  fetch(ids, versions) {
    return this.redis.fetch(ids, versions);
  }

  /**
   * Refreshes the expiry of sessions in use; resolves with the ids whose stored copy is gone,
   * or null (nothing done) when the data set is no longer the one of token `dataset`.
   */
  refresh(ids, dataset) {
    return this.redis.refresh(ids, dataset);
  }

  /**
   * Writes the expiry policy when given one and resolves with the data set's token, which
   * changes when Redis loses its data.
   */
  check(policy) {
    return this.redis.check(...policyArgs(policy));
  }

  /** `check`, before returning. */
  checkNow(policy) {
    return this.redis.checkNow(...policyArgs(policy));
  }

  ids(held) {
    return splitIdList(this.redis.idList(held));
  }

  load(id) {
    return this.redis.load(id);
  }

  loadLater(id) {
    return this.redis.loadLater(id);
  }

  /** The copy `load` returned is what `removeCorrupt` is given back. */
  rejectLoaded() {}

  removeCorrupt(id, copy) {
    // null: the copy `load` refused itself, which the core remembers.
    return this.redis.removeCorrupt(id, copy === null ? null : copy.json);
  }

  import(id, json) {
    return this.redis.import(id, json);
  }

  checkImport(id, json) {
    this.redis.checkImport(id, json);
  }

  writeNow(items) {
    return writeResults(items, this.redis.writeNow(...columns(items)));
  }

  remove(id) {
    return this.redis.remove(id);
  }

  removeLater(ids) {
    return this.redis.removeLater(ids);
  }

  /** Nothing to release: Redis expires what no store holds by itself. */
  release() {}

  /**
   * Redis deletes expired sessions by itself; a sweep drops their ids from the index. Resolves
   * with the summary the cache logs.
   */
  async sweep() {
    const summary = {
      scanned: 0,
      expired: 0,
      removed: 0,
      keptBusy: 0,
      corrupt: [],
      removedCorrupt: 0,
      unreadable: [],
      failed: [],
      temporariesRemoved: 0,
    };
    try {
      const pruned = await this.redis.prune();
      Object.assign(summary, { scanned: pruned, expired: pruned, removed: pruned });
    } catch (error) {
      summary.unreadable.push({ id: '(index)', code: error.code, message: error.message });
    }
    return summary;
  }

  /**
   * `available` (Redis reachable) and `connects` (connections made so far: a new number means
   * the store reconnected).
   */
  stats() {
    return { available: this.redis.available, connects: this.redis.connects };
  }

  /** Disconnects for good; every call fails from then on. */
  close() {
    this.redis.close();
  }
}

/**
 * Items as the core's write calls take them: ids, contents and bases apart.
 *
 * @param {import('./contract').WriteItem[]} items
 * @returns {[string[], string[], Array<number | null>]}
 */
function columns(items) {
  return [items.map((item) => item.id), items.map((item) => item.json), items.map((i) => i.base)];
}

/**
 * A store's `staleCleanupOptions` (or null) as the core's `check` takes them.
 *
 * @param {Partial<import('./contract').ExpiryPolicy> | null} policy
 * @returns {[boolean, number | null, number | null]}
 */
function policyArgs(policy) {
  const { staleTimeout = null, maxToLive = null } = policy || {};
  return [Boolean(policy), staleTimeout, maxToLive];
}

/**
 * A Redis URL without its password, for messages. A URL of several hosts is no WHATWG URL, so
 * the password is found by hand: between the first `:` after the scheme and the last `@`.
 */
function redacted(url) {
  const match = /^([a-z+]+:\/\/)(.*)@([^@]*)$/is.exec(url);
  if (!match) return url;
  const [, scheme, credentials, rest] = match;
  const colon = credentials.indexOf(':');
  if (colon === -1) return url;
  return `${scheme}${credentials.slice(0, colon)}:***@${rest}`;
}

module.exports = { RedisBackend, redacted };
