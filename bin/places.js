'use strict';

// Where `rammerhead-sessions` finds sessions: a directory, or a key prefix on Redis. Both give
// the command the same verbs, so every command works on either, and `copy` between them.

const native = require('../index.js');
const { redacted } = require('../lib/backends/redis-backend');
const { splitIdList } = require('../lib/backends/id-list');
const { DEFAULT_MAX_SESSION_BYTES } = require('../lib/stores/options');

const BATCH = 500;
const REDIS_TIMEOUT_MS = 5000;

function isRedisUrl(where) {
  return /^rediss?:\/\//i.test(where);
}

/** A sessions directory, through the native functions made for the command. */
class DirectoryPlace {
  constructor(dir) {
    this.name = dir;
    this.dir = dir;
    /** What a session that cannot be read is, in messages. */
    this.unreadableKind = 'files';
  }

  ids() {
    return native.listSessionFiles(this.dir);
  }

  /** [{ id, size, createdAt, lastUsed, problem, message }], a batch at a time. */
  inspect(ids, onBatch = () => {}) {
    const infos = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      infos.push(...native.inspectSessionFiles(this.dir, ids.slice(i, i + BATCH)));
      onBatch(Math.min(i + BATCH, ids.length));
    }
    return infos;
  }

  read(id) {
    return native.exportSessionFile(this.dir, id);
  }

  write(id, json) {
    native.importSessionFile(this.dir, id, json);
  }

  /** Deletes stale (and, if asked, corrupt) files, re-checking each; see the sweep summary. */
  prune(ids, options, onBatch) {
    const total = pruneTotals();
    for (let i = 0; i < ids.length; i += BATCH) {
      const summary = native.pruneSessionFiles(this.dir, ids.slice(i, i + BATCH), options);
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

/** The sessions of one key prefix on Redis, as RammerheadSessionRedisStore keeps them. */
class RedisPlace {
  constructor(url, prefix, tlsCa) {
    this.name = `${redacted(url)} (prefix ${prefix})`;
    this.unreadableKind = 'values';
    this.redis = new native.RedisSessions(
      url,
      prefix,
      REDIS_TIMEOUT_MS,
      REDIS_TIMEOUT_MS,
      DEFAULT_MAX_SESSION_BYTES,
      tlsCa,
    );
  }

  /** Learns the expiry policy in Redis, so that sessions written here expire by it. */
  async prepare() {
    if (!this.redis.available) {
      const error = new Error(`cannot reach ${this.name}`);
      error.code = 'ERR_REDIS_UNAVAILABLE';
      throw error;
    }
    await this.redis.check(false, null, null);
  }

  ids() {
    return splitIdList(this.redis.idList());
  }

  inspect(ids, onBatch = () => {}) {
    const infos = ids.map((id, index) => {
      const info = this._inspectOne(id);
      if ((index + 1) % BATCH === 0 || index + 1 === ids.length) onBatch(index + 1);
      return info;
    });
    return infos.filter((info) => info !== null);
  }

  read(id) {
    const json = this._load(id);
    if (json === null) {
      const error = new Error(`no session ${id} in ${this.name}`);
      error.code = 'ENOENT';
      throw error;
    }
    return json;
  }

  write(id, json) {
    this.redis.import(id, json);
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
      this._remove(info.id, total, 'removed', () => this.redis.remove(info.id));
    }
    if (options.removeCorrupt) {
      for (const info of corrupt) {
        // Loaded again so that the copy deleted is the one found corrupt now.
        if (this._inspectOne(info.id)?.problem !== 'ERR_CORRUPT_SESSION') continue;
        this._remove(info.id, total, 'removedCorrupt', () => this.redis.removeCorrupt(info.id));
      }
    }
    return total;
  }

  close() {
    this.redis.close();
  }

  _load(id) {
    const loaded = this.redis.load(id);
    return loaded === null ? null : loaded.json;
  }

  _inspectOne(id) {
    try {
      const json = this._load(id);
      if (json === null) return null;
      const { data } = JSON.parse(json);
      const time = (at) => (typeof at === 'number' && Number.isFinite(at) ? at : undefined);
      return {
        id,
        size: Buffer.byteLength(json),
        createdAt: time(data.createdAt),
        lastUsed: time(data.lastUsed),
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
function openPlace(where, { prefix, tlsCa }) {
  return isRedisUrl(where) ? new RedisPlace(where, prefix, tlsCa) : new DirectoryPlace(where);
}

module.exports = { openPlace, expiredOf };
