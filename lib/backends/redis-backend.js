'use strict';

const { RedisSessions } = require('../index.js');
const { QueuedWritesBackend } = require('./background-writes');
const { splitIdList } = require('./id-list');

/**
 * The backend of the Redis store: sessions under one key prefix on one Redis server, through
 * the native `RedisSessions`. It implements the interface `CachedStore` documents. Every change
 * runs in the order it was asked for; while Redis cannot be reached, every call fails at once
 * with `ERR_REDIS_UNAVAILABLE` and the connection is re-established in the background.
 */
class RedisBackend extends QueuedWritesBackend {
  /**
   * @param {{ redisUrl: string, keyPrefix: string, commandTimeout: number,
   *   connectTimeout: number, maxSessionBytes: number, tlsCa?: string }} settings
   */
  constructor(settings) {
    const redis = new RedisSessions(
      settings.redisUrl,
      settings.keyPrefix,
      settings.commandTimeout,
      settings.connectTimeout,
      settings.maxSessionBytes,
      settings.tlsCa,
    );
    super(redis);
    this.redis = redis;
    /** The last copy `load` returned, for `removeCorrupt` to delete only that copy. */
    this.loaded = { id: undefined, json: null, version: undefined };
    /**
     * Set by the store: the version a write of `id` is based on (null: new here, -1: whatever
     * Redis holds), and the JSON a conflicting write of `id` becomes once merged with the
     * newer stored copy (undefined: not held any more).
     */
    this.baseOf = () => -1;
    this.resolveConflict = () => undefined;
  }

  /** The version of the copy `load` returned last. */
  get loadedVersion() {
    return this.loaded.version;
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
   * The stored copies newer than `versions[i]` of `ids[i]`: `{ id, version, json }`, json null
   * when deleted since. Rejects (with `code`) when Redis cannot be reached.
   */
  fetch(ids, versions) {
    return this.redis.fetch(ids, versions).catch(rethrowWithCode);
  }

  /** Whether Redis is reachable, as far as the last command and reconnection know. */
  get available() {
    return this.redis.available;
  }

  /** Why Redis cannot be reached, while it cannot (else null). */
  get unavailableBecause() {
    return this.redis.unavailableBecause;
  }

  /** Connections made so far: a new number means the store reconnected. */
  get connects() {
    return this.redis.connects;
  }

  /** Disconnects for good; every call fails from then on. */
  close() {
    this.redis.close();
  }

  ids(held) {
    return splitIdList(this.redis.idList(held));
  }

  load(id) {
    this.loaded = { id, json: null, version: undefined };
    const loaded = this.redis.load(id);
    if (loaded === null) return null;
    this.loaded = { id, json: loaded.json, version: loaded.version };
    return loaded.json;
  }

  /** The copy `load` just returned is what `removeCorrupt` will delete. */
  rejectLoaded() {}

  removeCorrupt(id) {
    // null: the copy `load` refused itself, which the native side remembers.
    return this.redis.removeCorrupt(id, this.loaded.id === id ? this.loaded.json : null);
  }

  /** Stores `json` whatever Redis holds; returns the version stored. */
  saveNow(id, json) {
    return this.redis.import(id, json);
  }

  /**
   * Stores every item before returning. A write refused for a newer stored copy is merged with
   * it (`resolveConflict`) and tried again, based as `baseOf` says (at last whatever Redis
   * holds); one refused for a delete elsewhere is not a failure: the session is gone for every
   * host.
   */
  saveAllNow(ids, contents) {
    const failures = [];
    let pending = ids.map((id, index) => index);
    while (pending.length > 0) {
      const batch = pending.map((index) => ids[index]);
      const bases = batch.map((id) => this.baseOf(id));
      const next = [];
      const results = this.redis.writeNow(
        batch,
        pending.map((index) => contents[index]),
        bases,
      );
      for (const failure of results) {
        const index = pending[failure.index];
        if (failure.code === 'ERR_SESSION_DELETED') continue;
        const merged =
          failure.code === 'ERR_SESSION_CONFLICT'
            ? this.resolveConflict(ids[index], failure)
            : undefined;
        if (merged !== undefined) {
          contents[index] = merged;
          next.push(index);
        } else {
          failures.push({ ...failure, index });
        }
      }
      pending = next;
    }
    return failures;
  }

  queueWrites(ids, contents, settle) {
    this.writes.queue(
      ids,
      contents,
      settle,
      ids.map((id) => this.baseOf(id)),
    );
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
   * with the summary `CachedStore` logs.
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
      summary.unreadable.push({ id: '(index)', code: codeOf(error), message: error.message });
    }
    return summary;
  }

  /**
   * Refreshes the expiry of sessions in use; resolves with the ids whose stored copy is gone,
   * or null (nothing done) when the data set is no longer the one of token `dataset`. Rejects
   * (with `code`) when Redis cannot be reached.
   */
  refresh(ids, dataset) {
    return this.redis.refresh(ids, dataset).catch(rethrowWithCode);
  }

  /**
   * Writes the expiry policy when given one and resolves with the data set's token, which
   * changes when Redis loses its data. Rejects (with `code`) when Redis cannot be reached.
   */
  check(policy) {
    return this.redis.check(...policyArgs(policy)).catch(rethrowWithCode);
  }

  /** `check`, before returning: the token, or a throw with `code`. */
  checkNow(policy) {
    return this.redis.checkNow(...policyArgs(policy));
  }
}

/** A store's `staleCleanupOptions` (or null) as the native `check` takes them. */
function policyArgs(policy) {
  const { staleTimeout = null, maxToLive = null } = policy || {};
  return [Boolean(policy), staleTimeout, maxToLive];
}

/** A Redis URL without its password, for messages. */
function redacted(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** Native promise rejections carry the code at the start of their message. */
function codeOf(error) {
  const match = /^(E[A-Z_]+): /.exec(error.message);
  return error.code && error.code !== 'GenericFailure' ? error.code : match ? match[1] : 'EIO';
}

function rethrowWithCode(error) {
  error.code = codeOf(error);
  throw error;
}

module.exports = { RedisBackend, redacted };
