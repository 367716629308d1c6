// @ts-check
'use strict';

// Where `rammerhead-sessions` finds sessions: a directory, or a key prefix on Redis. Both give
// the command the same verbs, so every command works on either, and `copy` between them.

const native = require('../index.js');
const { codedError } = require('../lib/api/errors');
const { RedisBackend, redacted } = require('../lib/backends/redis-backend');
const { DEFAULT_MAX_SESSION_BYTES } = require('../lib/stores/options');

/** @typedef {import('../lib/backends/contract').SessionPlace} SessionPlace */

const BATCH = 500;
const REDIS_TIMEOUT_MS = 5000;

function isRedisUrl(where) {
  return /^rediss?(\+cluster|\+sentinel)?:\/\//i.test(where);
}

/**
 * A sessions directory, through the core's functions made for the command: each opens the
 * directory and holds no state, so they are safe beside a server using the same directory.
 *
 * @implements {SessionPlace}
 */
class DirectoryPlace {
  /**
   * @param {string} dir
   * @param {import('../index').CodecOptions} codec how sessions are written; its keys read
   */
  constructor(dir, codec) {
    this.name = dir;
    this.dir = dir;
    this.codec = codec;
    /** What a session that cannot be read is, in messages. */
    this.unreadableKind = 'files';
  }

  ids() {
    return native.listSessionFiles(this.dir);
  }

  /**
   * @param {string[]} ids
   * @param {(done: number) => void} [onBatch]
   */
  inspect(ids, onBatch = () => {}) {
    const infos = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      infos.push(...native.inspectSessionFiles(this.dir, ids.slice(i, i + BATCH), this.codec));
      onBatch(Math.min(i + BATCH, ids.length));
    }
    return infos;
  }

  read(id) {
    return native.exportSessionFile(this.dir, id, this.codec);
  }

  write(id, json) {
    native.importSessionFile(this.dir, id, json, this.codec);
  }

  /** Deletes stale (and, if asked, corrupt) files, re-checking each; see the sweep summary. */
  prune(ids, options, onBatch) {
    const total = pruneTotals();
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      const summary = native.pruneSessionFiles(this.dir, batch, options, this.codec);
      for (const key of ['scanned', 'expired', 'removed', 'keptBusy', 'removedCorrupt']) {
        total[key] += summary[key];
      }
      total.corrupt += summary.corrupt.length;
      total.failed.push(...summary.failed);
      onBatch(Math.min(i + BATCH, ids.length));
    }
    total.temporariesRemoved = options.dryRun ? 0 : native.removeAbandonedTemporaries(this.dir);
    return total;
  }

  async prepare() {}

  close() {}
}

/**
 * The sessions of one key prefix on Redis, through the Redis store's backend.
 *
 * @implements {SessionPlace}
 */
class RedisPlace {
  constructor(url, prefix, tlsCa, tlsInsecure, codec) {
    this.name = `${redacted(url)} (prefix ${prefix})`;
    this.unreadableKind = 'values';
    this.backend = new RedisBackend({
      redisUrl: url,
      keyPrefix: prefix,
      commandTimeout: REDIS_TIMEOUT_MS,
      connectTimeout: REDIS_TIMEOUT_MS,
      maxSessionBytes: DEFAULT_MAX_SESSION_BYTES,
      tlsCa,
      tlsInsecure,
      codec,
    });
  }

  /** Learns the expiry policy in Redis, so that sessions written here expire by it. */
  async prepare() {
    if (!this.backend.available) {
      throw codedError(`cannot reach ${this.name}`, 'ERR_REDIS_UNAVAILABLE');
    }
    await this.backend.check(null);
  }

  ids() {
    return this.backend.ids();
  }

  /**
   * @param {string[]} ids
   * @param {(done: number) => void} [onBatch]
   */
  inspect(ids, onBatch = () => {}) {
    const infos = ids.map((id, index) => {
      const info = this._inspectOne(id);
      if ((index + 1) % BATCH === 0 || index + 1 === ids.length) onBatch(index + 1);
      return info;
    });
    return infos.filter((info) => info !== null);
  }

  read(id) {
    const copy = this.backend.load(id);
    if (copy === null) throw codedError(`no session ${id} in ${this.name}`, 'ENOENT');
    return copy.json;
  }

  write(id, json) {
    this.backend.import(id, json);
  }

  /**
   * Deletes the sessions stale by the given limits (and, if asked, the corrupt ones, only as
   * found), then drops expired ids from the index. Redis expires keys by itself; this is for
   * limits tighter than the store's.
   */
  prune(ids, options, onBatch) {
    const infos = this.inspect(ids, onBatch);
    const total = { ...pruneTotals(), scanned: infos.length };
    const sessions = infos.filter((info) => !info.problem);
    const expired = expiredOf(sessions, options);
    total.expired = expired.length;
    const corrupt = infos.filter((info) => info.problem === 'ERR_CORRUPT_SESSION');
    total.corrupt = corrupt.length;
    if (options.dryRun) return total;
    for (const info of expired) {
      this._remove(info.id, total, 'removed', () => this.backend.remove(info.id));
    }
    if (options.removeCorrupt) {
      for (const info of corrupt) {
        // Loaded again so that the copy deleted is the one found corrupt now.
        if (this._inspectOne(info.id)?.problem !== 'ERR_CORRUPT_SESSION') continue;
        this._remove(info.id, total, 'removedCorrupt', () =>
          this.backend.removeCorrupt(info.id, null),
        );
      }
    }
    return total;
  }

  close() {
    this.backend.close();
  }

  _inspectOne(id) {
    try {
      const copy = this.backend.load(id);
      if (copy === null) return null;
      const { json } = copy;
      const { data } = JSON.parse(json);
      const time = (at) => (typeof at === 'number' && Number.isFinite(at) ? at : undefined);
      return {
        id,
        size: copy.storedBytes,
        createdAt: time(data.createdAt),
        lastUsed: time(data.lastUsed),
        encoding: copy.encoding,
      };
    } catch (error) {
      // Redis itself failing is not a property of one session: the command stops.
      if (error.code === 'ERR_REDIS_UNAVAILABLE' || error.code === 'ERR_REDIS') throw error;
      return { id, size: 0, problem: error.code || 'ERR_CORRUPT_SESSION', message: error.message };
    }
  }

  _remove(id, total, counter, remove) {
    try {
      if (remove()) total[counter]++;
    } catch (error) {
      total.failed.push({ id, code: error.code, message: error.message });
    }
  }
}

/** What `prune` reports, before it has done anything. */
function pruneTotals() {
  return {
    scanned: 0,
    expired: 0,
    removed: 0,
    keptBusy: 0,
    corrupt: 0,
    removedCorrupt: 0,
    failed: [],
    temporariesRemoved: 0,
  };
}

/** The sessions stale by the core's expiry rule. */
function expiredOf(infos, { now, staleTimeout, maxToLive }) {
  const time = (at) => (typeof at === 'number' ? at : NaN);
  const createdAt = Float64Array.from(infos, (info) => time(info.createdAt));
  const lastUsed = Float64Array.from(infos, (info) => time(info.lastUsed));
  const limit = (ms) => (ms === undefined ? null : ms);
  return native
    .expiredIndices(createdAt, lastUsed, now, limit(staleTimeout), limit(maxToLive))
    .map((index) => infos[index]);
}

/** The place `where` names: a Redis URL, else a directory. */
function openPlace(where, { prefix, tlsCa, tlsInsecure, codec }) {
  if (!isRedisUrl(where)) return new DirectoryPlace(where, codec);
  return new RedisPlace(where, prefix, tlsCa, tlsInsecure, codec);
}

module.exports = { openPlace, expiredOf };
