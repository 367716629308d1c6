'use strict';

const { changeFingerprint } = require('../index.js');
const { CachedStore } = require('./cached-store');
const { ChangeWriter } = require('./change-writer');
const options = require('./options');
const { RedisBackend, redacted } = require('./redis-backend');
const { RemoteChanges, ownWrite, storedCopyOf, versionOf } = require('./remote-changes');

/**
 * Merges in a row after which a session is stored whatever Redis holds (last writer wins): each
 * takes one round trip, and hosts writing one session at once settle within a few.
 */
const MAX_MERGES = 10;

const DEFAULT_URL = 'redis://127.0.0.1:6379';
/**
 * Copies of a held session's writes kept while their outcome is not known (under way, or
 * failed without a reply): a newer stored copy equal to one of them is this host's own.
 */
const MAX_SENT = 4;

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
    /** Sessions stored whatever Redis held, after conflicts kept recurring. */
    this.lastWriterWins = 0;
    this.remote = new RemoteChanges(this);
    // What a write is based on: the version its copy was loaded or last stored as; null for a
    // session created here; -1, whatever Redis holds, after merges kept failing.
    this.backend.baseOf = (id) => {
      const held = this.sessions.get(id);
      if (held === undefined || held.conflicts >= MAX_MERGES) return -1;
      return held.version === undefined ? null : held.version;
    };
    const reported = this.backend.onWritesReported;
    this.backend.onWritesReported = () => {
      reported();
      this.remote.retryDeferred();
    };
    this.backend.resolveConflict = (id, failure) => {
      const held = this.sessions.get(id);
      if (held === undefined) return undefined;
      return this._mergeRefused(held, failure) || this.serialize(held, 'close');
    };
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
    this.changes.stop();
    this.remote.stop();
    super.close();
    this.backend.close();
  }

  /**
   * Also: `available` (Redis reachable), `connects` (connections made so far), `subscribed`
   * (hearing other hosts' changes, as last heard), and how held copies kept in step with other
   * hosts: `refreshed` (taken as stored elsewhere), `merged`
   * (changes made here merged with a newer copy), `lastWriterWins` (stored whatever Redis held
   * after repeated conflicts), `droppedDeleted` (deleted by another host).
   */
  stats() {
    const { remote } = this;
    return {
      ...super.stats(),
      available: this.backend.available,
      connects: this.backend.connects,
      subscribed: remote.subscribed,
      refreshed: remote.refreshed,
      merged: remote.merged,
      lastWriterWins: this.lastWriterWins,
      droppedDeleted: remote.dropped,
    };
  }

  /**
   * A write records the merge base its JSON becomes once stored (made now: keeping the text
   * until the write settles would make a large session outlive the young generation).
   */
  writeStaying(held, json, then, fingerprint) {
    const copy = storedCopyOf(json, fingerprint);
    this._sent(held, copy);
    super.writeStaying(held, json, then, copy.fingerprint);
  }

  unconfirmed(held, json) {
    this._sent(held, json);
  }

  touch(held) {
    super.touch(held);
    this.changes.used(held);
  }

  stored(held, json, fingerprint, version) {
    if (!held.watched) this._watchCookies(held);
    const written = json === undefined ? ownWrite(held, fingerprint) : undefined;
    // The latest write is stored: every earlier one came before it.
    held.sent = null;
    // A copy taken in place meanwhile is newer than what this write stored.
    if (version > 0 && version <= versionOf(held)) return;
    const copy =
      json === undefined ? { base: written?.base, fingerprint } : storedCopyOf(json, fingerprint);
    held.stored = copy.fingerprint;
    if (held.conflicts >= MAX_MERGES) {
      this.lastWriterWins++;
      this.logger.warn(
        `(${this.name}) ${held.id} kept conflicting; stored this copy over the others`,
      );
    }
    held.conflicts = 0;
    // 0: a copy stored before versions were kept, or a write that stored nothing (expired).
    if (version > 0 || (version === 0 && held.version === undefined)) held.version = version;
    held.base = copy.base;
  }

  /**
   * An imported session is held at once: the process that made it (rammerhead's `/newsession`)
   * is the one its browser comes back to, which then serves it while Redis is unreachable and
   * writes it back if Redis loses its data. Unused, it leaves memory without a write.
   */
  imported(id, session, json, version) {
    this.stored(this.held.hold(id, session), json, undefined, version);
  }

  /**
   * A write refused for a newer stored copy is merged with it and written again at once; one
   * refused for a delete on another host drops the session.
   */
  writeRefused(held, failure) {
    if (failure.code === 'ERR_SESSION_DELETED') {
      this.remote.drop(held);
      return true;
    }
    if (failure.code !== 'ERR_SESSION_CONFLICT') return false;
    this._mergeRefused(held, failure);
    this.changes.writeSoon(held);
    return true;
  }

  /**
   * The held session's JSON and fingerprint when it changed since it was stored (or was never
   * stored, or is to be written again); null when unchanged; undefined when it cannot be
   * serialized now (logged, naming `job`).
   */
  changedCopy(held, job) {
    const json = this.serialize(held, job);
    if (json === undefined) return undefined;
    const fingerprint = changeFingerprint(json);
    if (!this.unwritten.has(held) && fingerprint === held.stored) return null;
    return { json, fingerprint };
  }

  /**
   * Has a held session written within milliseconds of a cookie change made through hammerhead
   * (a response's `Set-Cookie`, or `document.cookie` synced from the page), rather than at the
   * next round: with a round-robin load balancer, the next request of the page may reach
   * another host. Other changes (`data`) are written at the next round.
   */
  _watchCookies(held) {
    held.watched = true;
    const { cookies } = held.session;
    if (!cookies) return;
    for (const name of ['setByServer', 'setByClient']) {
      const original = cookies[name];
      if (typeof original !== 'function') continue;
      cookies[name] = (...args) => {
        const result = original.apply(cookies, args);
        this.changes.writeSoon(held);
        return result;
      };
    }
  }

  /** An unchanged session leaves memory without a write. */
  fate(held, leaving) {
    if (leaving && this._isUnchanged(held)) return 'drop';
    return super.fate(held, leaving);
  }

  _isUnchanged(held) {
    if (held.stored === undefined || this.unwritten.has(held)) return false;
    if (this.backend.isWriting(held.id)) return false;
    return this.changedCopy(held, 'checkCache') === null;
  }

  /** Keeps what a write of `held` stores (see `ownWrite`) until its writes are reported. */
  _sent(held, copyOrJson) {
    if (held.sent === null) held.sent = [];
    if (held.sent.push(copyOrJson) > MAX_SENT) held.sent.shift();
  }

  /**
   * Takes the newer copy a write of `held` was refused for, merged with what changed here;
   * after MAX_MERGES refusals in a row, `baseOf` has the next write stored whatever Redis holds.
   * Returns the JSON the copy now holds, or undefined when it had taken that copy already.
   */
  _mergeRefused(held, failure) {
    held.conflicts++;
    return this.remote.adopt(held, failure.version, failure.json);
  }
}

module.exports = { RammerheadSessionRedisStore };
