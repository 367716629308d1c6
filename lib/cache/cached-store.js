// @ts-check
'use strict';

const { checkSessionId } = require('../../index.js');
const { RammerheadSessionAbstractStore } = require('../api/abstract-store');
const { codedError, requireString } = require('../api/errors');
const { CacheCheck } = require('./cache-check');
const { Verdict, itemOf } = require('./copies');
const { removeExpired, hasExpired } = require('./expiry');
const { Cause, HeldSessions, serialized, serializedOrLogged } = require('./held-sessions');
const { Housekeeper } = require('./housekeeper');
const { useClock } = require('./coarse-clock');
const { addRequestStep } = require('../api/request-step');

const CORRUPT = 'ERR_CORRUPT_SESSION';
/** Expired sessions whose stored copies one background task deletes. */
const REMOVAL_BATCH = 256;
/** Errors of `addSerializedSession` that are the input's fault, thrown as the original does. */
const REFUSED_INPUT = new Set(['ERR_INVALID_SESSION', 'ERR_SESSION_TOO_LARGE']);
/** Refused writes written again at once in `close()`, at most, before it gives up on them. */
const MAX_CLOSE_ROUNDS = 16;

function unsavedError(failures) {
  const list = failures.map((f) => `${f.id} (${f.code})`).join(', ');
  const message = `could not save ${failures.length} session(s): ${list}`;
  return codedError(message, 'ERR_SESSIONS_NOT_SAVED', { failures });
}

/**
 * Sessions held in memory while in use, in front of a backend that keeps them otherwise (see
 * `backends/contract.d.ts`). The hot path (`get`/`has` of a held session) is one Map lookup;
 * everything that touches the backend for long runs in the background or in the housekeeper's
 * slices.
 *
 * What differs between backends is passed in, never overridden: the backend itself, and
 * `copies` (see `copies.js`), which tracks how the copy a held session is based on relates to
 * the stored one. The stores are this class with their options and those two.
 */
class CachedStore extends RammerheadSessionAbstractStore {
  /**
   * @param {string} name the store's name in log messages
   * @param {object} settings parsed options
   * @param {import('../backends/contract').SessionBackend} backend
   * @param {import('./copies').Copies} copies
   */
  constructor(name, settings, backend, copies) {
    super();
    this.name = name;
    this.logger = settings.logger;
    this.cacheTimeout = settings.cacheTimeout;
    this.cacheCheckInterval = settings.cacheCheckInterval;
    this.deleteUnused = settings.deleteUnused;
    this.deleteCorruptedSessions = settings.deleteCorruptedSessions;
    this.staleCleanupOptions = settings.staleCleanupOptions;
    this.sessionClass = settings.sessionClass;
    this.maxSessionBytes = settings.maxSessionBytes;
    /** How new values are stored: `plain`, `zstd`, `aes-256-gcm` or `zstd+aes-256-gcm`. */
    this.encoding = settings.encoding;
    if (this.encoding !== 'plain') {
      const keys = settings.codec.keys.length;
      this.logger.info(
        `(${name}) storing sessions ${this.encoding}` +
          (keys ? ` (${keys} encryption key${keys > 1 ? 's' : ''}; the first encrypts)` : ''),
      );
    }
    this.backend = backend;
    this.copies = copies;
    this.housekeeper = new Housekeeper();
    this.held = new HeldSessions(this.housekeeper, this.logger, name);
    /** The Map of `held`, read directly by the hot path. */
    this.sessions = this.held.map;
    /** Held sessions whose stored copy may be missing or old: a cache check writes them. */
    this.unwritten = new Set();
    /** Ids dropped as expired whose stored copies are being deleted: absent. */
    this.removing = new Set();
    /** Imports that could not be stored at once and were kept in memory (see `stats()`). */
    this.keptInMemory = 0;
    /** id -> ticket of the background load `prepare` started, until it is held or not found. */
    this.loading = new Map();
    /**
     * id -> how many requests' `prepare` found it missing (or could not read it), until the
     * event loop turns after each: `get` and `has` take these as absent rather than wait for
     * the backend again on the JavaScript thread (hammerhead reads the session right after
     * the step).
     */
    this.absent = new Map();
    /**
     * For backends shared by hosts, what gets each request through the proxy's pipeline ready
     * and holds its response until its changes are stored (see `redis/request-sync.js`); null
     * for the others, whose requests only have their session loaded first (`prepare`).
     * `current()` names the reply of the route being served, if any.
     * @type {{ ready(request: import('../api/request-step').Request): Promise<unknown> | undefined,
     *   inRoute(req: any, run: () => any): any,
     *   current(): { waitFor(done: Promise<unknown>): void } | undefined } | null}
     */
    this.requests = null;
    /** The running cache check and stale cleanup, so that neither overlaps itself. */
    this.check = null;
    this.staleSweep = null;
    /** What the store's helpers may do with this cache, and nothing more. */
    this.view = Object.freeze({
      name,
      logger: this.logger,
      housekeeper: this.housekeeper,
      held: this.held,
      isUnwritten: (held) => this.unwritten.has(held),
      unwritten: () => Array.from(this.unwritten),
      markUnwritten: (held) => this.unwritten.add(held),
      write: (held, json, options) => this.write(held, json, options),
      drop: (held, cause) => this.drop(held, cause),
      prepare: (ids, alongside) => this.prepare(ids, alongside),
    });

    this.releaseClock = useClock();
    this.housekeeper.every(this.cacheCheckInterval, () => this.checkCache());
    if (this.staleCleanupOptions) {
      const { staleCheckInterval } = this.staleCleanupOptions;
      this.housekeeper.every(staleCheckInterval, () => this.removeStaleSessions());
      this.removeStaleSessions();
    }
  }

  /** Sessions held in memory, by id: a copy, made at each read. */
  get cachedSessions() {
    return new Map(Array.from(this.sessions, ([id, held]) => [id, held.session]));
  }

  keys() {
    const ids = Array.from(this.sessions.keys());
    // The core leaves out the stored copies of most held sessions, listed already; those the
    // index does not list (being written before they leave memory, or held too lately for it
    // to know) are left out here.
    for (const id of this.backend.ids(this.held.indexOfHeld())) {
      if (!this.sessions.has(id) && !this.removing.has(id)) ids.push(id);
    }
    return ids;
  }

  /**
   * Held in memory, or stored and revivable: the stored copy is read and revived, as `get`
   * would, so a copy `get` cannot serve is not a session. It is not kept in memory; a corrupt
   * copy is left for `get` or the stale cleanup to report and delete.
   */
  has(id) {
    return this.sessions.has(id) || this._hasUncached(id);
  }

  get(id, updateActiveTimestamp = true) {
    const held = this.sessions.get(id);
    if (held === undefined) return this._getUncached(id, updateActiveTimestamp);
    if (held.leaving) this._takeBack(held);
    if (updateActiveTimestamp && held.isTouchDue()) this.held.touch(held);
    return held.session;
  }

  /**
   * Gets the sessions `ids` ready for a request about to read them, holding up no other
   * request: those not held are loaded in the background (one load per id, whatever asks).
   * Those it finds missing are absent for `get` and `has` until the event loop turns. Never
   * rejects: what cannot be loaded is left to `get`, which finds it missing.
   *
   * @param {Array<string | undefined>} ids undefined entries are skipped
   * @param {Promise<unknown>} [alongside] what else the request waits for (a version check):
   *   the missing ones stay absent until the event loop turns after that too
   * @returns {Promise<unknown> | undefined} undefined when there is nothing to wait for
   */
  prepare(ids, alongside) {
    let loads;
    for (const id of ids) {
      const load = id === undefined ? undefined : this._loadOnce(id);
      if (load !== undefined) (loads || (loads = [])).push(load);
    }
    if (loads === undefined) return alongside;
    if (alongside !== undefined) loads.push(alongside);
    return Promise.all(loads).then(() => this._markAbsent(ids));
  }

  /**
   * Makes this store the proxy's `openSessions` and, on a proxy with rammerhead's request
   * pipelines, adds the step that gets each request's session ready first (see `prepare` and
   * `requests`).
   */
  attachToProxy(proxy, removeExistingSessions = true) {
    super.attachToProxy(proxy, removeExistingSessions);
    if (this.requests !== null) {
      const { requests } = this;
      addRequestStep(proxy, {
        ready: (request) => requests.ready(request),
        inRoute: (req, run) => requests.inRoute(req, run),
      });
    } else {
      addRequestStep(proxy, { ready: ({ id, alsoRead }) => this.prepare([id, alsoRead]) });
    }
  }

  /** Stored in the background, starting at once; see `whenWritten()`. */
  add(id) {
    requireString(id, 'id');
    checkSessionId(id);
    if (this.has(id)) throw new Error(`session ${id} already exists`);
    const session = new this.sessionClass({ id });
    const json = session.serializeSession();
    this.removing.delete(id);
    this._forgetLoad(id);
    const held = this.held.hold(id, session);
    this.unwritten.add(held);
    this.write(held, json);
    this.logger.debug(`(${this.name}.add) added ${id}`);
    return session;
  }

  /** Resolves once every background write started so far (by `add` and cache checks) is done. */
  whenWritten() {
    return this.backend.whenWritten();
  }

  /**
   * True once the session is gone for every reader. False when there was none, or when its
   * stored copy cannot be deleted: the error is logged with its code and the session stays.
   */
  delete(id) {
    requireString(id, 'id');
    const reply = this._currentReply();
    if (reply !== undefined) return this._deleteLater(id, reply);
    let removed;
    try {
      removed = this.backend.remove(id);
    } catch (error) {
      this.logger.error(
        `(${this.name}.delete) cannot delete ${id}: ${error.code} ${error.message}`,
      );
      return false;
    }
    // A load under way read what is deleted now.
    this.loading.delete(id);
    const held = this.sessions.get(id);
    const wasHeld = held !== undefined && this.drop(held, Cause.DELETED);
    if (removed) this.logger.debug(`(${this.name}.delete) deleted ${id}`);
    return removed || wasHeld;
  }

  /**
   * Stores the given JSON before returning; it replaces any copy held in memory. Invalid input
   * throws. If it cannot be stored, the session is kept in memory (logged with its code), served
   * by this process and stored at the next cache check or at `close()`; other processes see it
   * only then. Inside a route of the proxy (see `requests`), it is held at once and stored in
   * the background, and the route's response waits for it instead.
   */
  addSerializedSession(id, serializedSession) {
    requireString(id, 'id');
    requireString(serializedSession, 'serializedSession');
    const session = this.sessionClass.DeserializeSession(id, serializedSession);
    const reply = this._currentReply();
    if (reply !== undefined) {
      this._importLater(id, session, serializedSession, reply);
      return;
    }
    const before = this.sessions.get(id);
    this._forgetLoad(id);
    let version;
    try {
      version = this.backend.import(id, serializedSession);
    } catch (error) {
      if (error.name === 'TypeError' || REFUSED_INPUT.has(error.code)) throw error;
      if (before !== undefined) this.drop(before, Cause.REPLACED);
      this.removing.delete(id);
      this.unwritten.add(this.held.hold(id, session));
      this.keptInMemory++;
      this.logger.error(
        `(${this.name}.addSerializedSession) cannot write ${id} yet, keeping it in memory: ${error.code} ${error.message}`,
      );
      return;
    }
    if (before !== undefined) this.drop(before, Cause.REPLACED);
    this.removing.delete(id);
    // The process that made it (rammerhead's `/newsession`) is the one its browser comes back
    // to; a backend shared by hosts keeps it held there (see `Copies.holdsImports`).
    if (this.copies.holdsImports) {
      this.copies.tracked(this.held.hold(id, session), { json: serializedSession, version });
    }
    this.logger.debug(`(${this.name}.addSerializedSession) added ${id}`);
  }

  /**
   * Stops the housekeeper and stores every session held in memory before returning, then lets
   * the backend go. Throws one error listing the sessions that could not be saved, after trying
   * all of them; those stay held, and the backend stays open, so that a later `close()` can
   * store them.
   */
  close() {
    this.housekeeper.stop();
    this.releaseClock();
    const failures = [];
    /** [write, json] of every session to store. */
    let writes = [];
    const dropped = [];
    for (const held of this.sessions.values()) {
      const fate = this._fate(held);
      if (fate !== undefined) {
        dropped.push([held, fate]);
        continue;
      }
      const json = serialized(held, (error) =>
        failures.push({ id: held.id, code: 'ERR_SERIALIZE', message: error.message }),
      );
      if (json !== undefined) writes.push([this._startWrite(held, json, { leaving: true }), json]);
    }
    // A write refused for a newer stored copy is merged with it and tried again at once.
    for (let round = 0; writes.length > 0; round++) {
      const results = this.backend.writeNow(writes.map(([write, json]) => itemOf(write, json)));
      const again = [];
      writes.forEach(([write], index) => {
        const { held } = write;
        const settled = this._settle(write, results[index], round < MAX_CLOSE_ROUNDS);
        if (settled.stored) this.drop(held, Cause.CLOSED);
        else if (settled.retry !== undefined) {
          again.push([this._startWrite(held, settled.retry, { leaving: true }), settled.retry]);
        } else if (settled.failure !== undefined) {
          // It stays, to be stored by a later close() or cache check.
          const { code, message } = settled.failure;
          failures.push({ id: held.id, code, message });
          if (held.leaving) this._takeBack(held);
        }
      });
      writes = again;
    }
    for (const [held, cause] of dropped) this.drop(held, cause);
    this.backend.release(dropped.map(([held]) => held.id));
    for (const f of failures) {
      this.logger.error(`(${this.name}.close) cannot save ${f.id}: ${f.code} ${f.message}`);
    }
    if (failures.length > 0) throw unsavedError(failures);
    this.backend.close();
  }

  /**
   * Moves sessions idle for longer than cacheTimeout out of memory, stored first unless never
   * used (or unchanged since stored), and stores those whose stored copy may be missing or
   * old. Resolves when every write has finished.
   */
  checkCache() {
    if (this.check) return this.check.done;
    this.check = new CacheCheck(this, Date.now());
    return this.check.start().finally(() => {
      this.check = null;
    });
  }

  /**
   * Deletes expired sessions: those held in memory judged by their live values, the stored ones
   * by the backend in the background. Resolves with the backend's summary.
   */
  removeStaleSessions() {
    if (this.staleSweep) return this.staleSweep;
    if (!this.staleCleanupOptions) return Promise.resolve(undefined);
    const policy = this.staleCleanupOptions;
    const now = Date.now();
    const stored = this.backend.sweep(now, policy, this.deleteCorruptedSessions);
    this.staleSweep = Promise.all([stored, this._expireHeld(now, policy)])
      .then(([summary]) => {
        this._logSweep(summary);
        return summary;
      })
      .catch((error) => {
        this.logger.error(`(${this.name}.removeStaleSessions) ${error.code} ${error.message}`);
        return undefined;
      })
      .finally(() => {
        this.staleSweep = null;
      });
    return this.staleSweep;
  }

  /**
   * What the store holds and how its writes fare: `held` sessions, `unwritten` ones (changed or
   * new, not stored yet), `writesPending` in the background, and `keptInMemory`, the imports
   * (`addSerializedSession`) that could not be stored at once and were kept in memory instead;
   * then what the backend and the copies tell of themselves.
   */
  stats() {
    return {
      held: this.sessions.size,
      unwritten: this.unwritten.size,
      writesPending: this.backend.writesPending,
      keptInMemory: this.keptInMemory,
      ...this.backend.stats(),
      ...this.copies.stats(),
    };
  }

  /** The session's JSON, or undefined when it cannot be serialized now: logged, naming `job`. */
  serialize(held, job) {
    return serializedOrLogged(held, this.logger, `${this.name}.${job}`);
  }

  /**
   * Stores `json` of a held session that stays in memory, in the background. `known`: what the
   * copies made of this JSON already (see `Copies.writing`); `replacing`: an import, stored
   * whatever is stored. `then` is called with the settled write (see `_settle`), once the writes
   * merged from it, if it was refused for a newer stored copy, have settled too.
   *
   * @param {import('./held-sessions').Held} held
   * @param {string} json
   * @param {{ known?: object, replacing?: boolean,
   *   then?: (settled: object) => void }} [options]
   */
  write(held, json, { known, replacing, then } = {}) {
    const write = this._startWrite(held, json, { known, replacing });
    // The JSON goes to the backend and is not kept here: see `BackgroundWrites.waiting`.
    this.backend.queueWrites([itemOf(write, json)], (id, failure, version) => {
      const settled = this._settle(write, { failure, version });
      // Merged with a newer stored copy: written again at once.
      if (settled.retry !== undefined) {
        this.write(held, settled.retry, { then });
        return;
      }
      if (settled.failure !== undefined) {
        this.logger.error(
          `(${this.name}) cannot write ${held.id} yet, keeping it in memory: ${failure.code} ${failure.message}`,
        );
      }
      if (then) then(settled);
    });
  }

  /**
   * Drops a held session, if it is still the one held under its id, and what the store knew
   * of it; returns whether it was held.
   */
  drop(held, cause) {
    this.unwritten.delete(held);
    return this.held.drop(held, cause);
  }

  /**
   * What leaving memory (idle, or the store closing) means for a held session: the cause it
   * is dropped for unwritten, or undefined when it is written first.
   */
  _fate(held) {
    if (this._isUnused(held)) return Cause.UNUSED;
    if (
      !this.unwritten.has(held) &&
      !this.backend.isWriting(held.id) &&
      this.copies.isStored(held)
    ) {
      return Cause.UNCHANGED;
    }
    return undefined;
  }

  /**
   * A write of `json` begins: the one place a session's write counter is raised. `leaving`: the
   * session is to leave memory once stored; `known`: what the copies made of this JSON
   * already, if anything (see `Copies.writing`); `replacing`: an import. What goes to the
   * backend is `itemOf(write, json)`.
   *
   * @param {import('./held-sessions').Held} held
   * @param {string} json
   * @param {{ known?: object, leaving?: boolean, replacing?: boolean }} [options]
   */
  _startWrite(held, json, { known, leaving = false, replacing = false } = {}) {
    const number = ++held.writes;
    const copy = this.copies.writing(held, json, { known, leaving, replacing });
    return { held, number, copy };
  }

  /**
   * Settles a write with its result (`{ version }`, or `{ failure }` with its code): the copies
   * learn of it, and the session is marked stored, dropped (deleted elsewhere) or unwritten.
   * Returns `{ stored }`, `{ dropped }`, `{ retry: json }` when a refused write is to be tried
   * again with contents merged with the newer stored copy (unless `mayRetry` is false), or
   * `{ failure }`; `{ superseded }` when the session was replaced or written again since, so
   * that this write says nothing of what is stored.
   *
   * @param {{ held: import('./held-sessions').Held, number: number, copy: object }} write
   * @param {{ version?: number, failure?: import('../backends/contract').WriteFailure }} result
   * @param {boolean} [mayRetry]
   */
  _settle(write, { version, failure }, mayRetry = true) {
    const { held, number } = write;
    if (!this.held.holds(held) || held.writes !== number) return { superseded: true };
    const verdict = this.copies.settled(held, write.copy, failure, version);
    if (verdict === Verdict.STORED) {
      this.unwritten.delete(held);
      return { stored: true };
    }
    if (verdict === Verdict.DELETED) {
      this.drop(held, Cause.DELETED_ELSEWHERE);
      return { dropped: true };
    }
    this.unwritten.add(held);
    if (typeof verdict === 'object' && mayRetry) return { retry: verdict.retry };
    return { failure };
  }

  // Out of has(), which stays small enough to be inlined into its callers.
  _hasUncached(id) {
    requireString(id, 'id');
    if (this.removing.has(id) || this.absent.has(id)) return false;
    if (this._load(id, false) === undefined) return false;
    this.backend.release([id]);
    return true;
  }

  _getUncached(id, updateActiveTimestamp) {
    requireString(id, 'id');
    if (this.removing.has(id) || this.absent.has(id)) return undefined;
    const loaded = this._load(id);
    if (loaded === undefined) return undefined;
    return this._holdLoaded(id, loaded, updateActiveTimestamp);
  }

  /** Holds a session just loaded and revived: [session, the copy loaded]. */
  _holdLoaded(id, [session, copy], touch) {
    const held = this.held.hold(id, session, touch);
    this.copies.tracked(held, copy);
    return session;
  }

  /** The reply of the proxy's route being served now, if any (see `requests`). */
  _currentReply() {
    return this.requests === null ? undefined : this.requests.current();
  }

  /**
   * `addSerializedSession` inside a route: checked as the backend's import checks, held at
   * once, and stored in the background, whatever is stored; `reply` waits for the write.
   */
  _importLater(id, session, json, reply) {
    this.backend.checkImport(id, json);
    const before = this.sessions.get(id);
    this._forgetLoad(id);
    if (before !== undefined) this.drop(before, Cause.REPLACED);
    this.removing.delete(id);
    const held = this.held.hold(id, session);
    this.unwritten.add(held);
    const stored = new Promise((resolve) => {
      this.write(held, json, {
        replacing: true,
        then: (settled) => {
          // As a failed import does: served from memory, stored later.
          if (settled.failure !== undefined) this.keptInMemory++;
          resolve(undefined);
        },
      });
    });
    reply.waitFor(stored);
    this.logger.debug(`(${this.name}.addSerializedSession) added ${id}, storing it`);
  }

  /**
   * `delete` inside a route: the session leaves memory at once and is absent from then on;
   * its stored copy is deleted in the background, and `reply` waits for that. True when it
   * was held (the request step loaded it before the route ran). A deletion that then fails is
   * logged, and the session comes back from the backend, as a failed `delete` leaves it.
   */
  _deleteLater(id, reply) {
    this.loading.delete(id);
    const held = this.sessions.get(id);
    const wasHeld = held !== undefined && this.drop(held, Cause.DELETED);
    this.removing.add(id);
    reply.waitFor(this._removeLater([id], 'delete'));
    this.logger.debug(`(${this.name}.delete) deleting ${id}`);
    return wasHeld;
  }

  /** A held session being stored before it leaves memory is in use again: it stays. */
  _takeBack(held) {
    held.leaving = false;
    this.held.setIndexed(held, true);
  }

  /**
   * Reads and revives a stored session: [session, the copy loaded], or undefined; never throws
   * into the caller's request handling. `report`: log what cannot be read, and delete what is
   * corrupt if so configured.
   */
  _load(id, report = true) {
    let copy;
    try {
      copy = this.backend.load(id);
    } catch (error) {
      if (report) this._unreadable(id, error);
      return undefined;
    }
    return this._revive(id, copy, report);
  }

  /**
   * `prepare`'s load: read off the JavaScript thread, then revived and held, unless the
   * session was held, added, imported or deleted meanwhile (which forgets `ticket`). Not
   * touched: the request's `get` does that.
   */
  async _loadLater(id, ticket) {
    let copy;
    let failure;
    try {
      copy = await this.backend.loadLater(id);
    } catch (error) {
      failure = error;
    }
    if (this.loading.get(id) !== ticket) return;
    this.loading.delete(id);
    if (this.sessions.has(id) || this.removing.has(id)) return;
    if (failure !== undefined) {
      this._unreadable(id, failure);
      return;
    }
    const loaded = this._revive(id, copy, true);
    if (loaded !== undefined) this._holdLoaded(id, loaded, false);
  }

  /**
   * `prepare`'s load of one id: undefined when held, being deleted, or found missing in this
   * turn (an upgrade passes through both of the proxy's pipelines).
   */
  _loadOnce(id) {
    if (this.sessions.has(id) || this.removing.has(id) || this.absent.has(id)) return undefined;
    const loading = this.loading.get(id);
    if (loading !== undefined) return loading.done;
    const ticket = { done: Promise.resolve() };
    this.loading.set(id, ticket);
    ticket.done = this._loadLater(id, ticket);
    return ticket.done;
  }

  /** A session stored now: a load under way, or one that found it missing, is out of date. */
  _forgetLoad(id) {
    this.loading.delete(id);
    this.absent.delete(id);
  }

  /** The ids of `ids` not held now are absent until the event loop turns (see `absent`). */
  _markAbsent(ids) {
    const missing = ids.filter((id) => id !== undefined && !this.sessions.has(id));
    if (missing.length === 0) return;
    for (const id of missing) this.absent.set(id, (this.absent.get(id) || 0) + 1);
    setImmediate(() => {
      for (const id of missing) {
        const left = this.absent.get(id) - 1;
        if (left > 0) this.absent.set(id, left);
        else this.absent.delete(id);
      }
    });
  }

  /** A stored copy that could not be read: reported, and deleted when corrupt if so set. */
  _unreadable(id, error) {
    if (error.code === CORRUPT) this._dropCorrupt(id, null, error);
    else
      this.logger.warn(
        `(${this.name}.get) cannot read session ${id}: ${error.code} ${error.message}`,
      );
  }

  /**
   * The loaded `copy` (or null) revived: [session, copy], or undefined.
   *
   * @returns {[any, import('../backends/contract').Loaded] | undefined}
   */
  _revive(id, copy, report) {
    if (copy === null) return undefined;
    try {
      return [this.sessionClass.DeserializeSession(id, copy.json), copy];
    } catch (error) {
      this.backend.rejectLoaded(id);
      if (report) this._dropCorrupt(id, copy, error);
      return undefined;
    }
  }

  /** `copy`: the copy found corrupt, or null when the backend refused it itself. */
  _dropCorrupt(id, copy, error) {
    const action = this.deleteCorruptedSessions ? 'deleting it' : 'leaving it in place';
    this.logger.warn(`(${this.name}.get) session ${id} is corrupt, ${action}: ${error.message}`);
    if (!this.deleteCorruptedSessions) return;
    try {
      // Only the copy found corrupt: another process may have stored the session since.
      this.backend.removeCorrupt(id, copy);
    } catch (removeError) {
      this.logger.warn(`(${this.name}.get) cannot delete corrupt ${id}: ${removeError.code}`);
    }
  }

  /**
   * Never used, as the original judges it (`lastUsed === createdAt`), and never returned by a
   * `get` that updates it: a first use in the millisecond of creation leaves the two equal, and
   * the next update may be a second away.
   */
  _isUnused(held) {
    return (
      this.deleteUnused &&
      held.session.lastUsed === held.session.createdAt &&
      !held.wasTouched() &&
      !this.unwritten.has(held)
    );
  }

  /**
   * Deletes expired held sessions, named by the index, in the housekeeper's slices. They leave
   * memory at once and are absent from then on; their stored copies are deleted in the
   * background, since one unlink can hold a thread for tens of milliseconds.
   */
  async _expireHeld(now, policy) {
    const removals = [];
    let batch = [];
    // Before the event loop runs again: a session stored under one of these ids afterwards is
    // a new one, which the deletion must not touch.
    const removeLater = () => {
      if (batch.length === 0) return;
      removals.push(this._removeLater(batch));
      batch = [];
    };
    const remove = (held) => {
      this.drop(held, Cause.EXPIRED);
      this.removing.add(held.id);
      if (batch.push(held.id) === REMOVAL_BATCH) removeLater();
    };
    await removeExpired(this.held, this.housekeeper, now, policy, remove, removeLater);
    // Sessions being written out by a cache check are not in the index's answers.
    if (this.check) {
      for (const held of this.check.leavingSessions()) {
        if (hasExpired(held.session, now, policy)) remove(held);
      }
    }
    removeLater();
    await Promise.all(removals);
  }

  /** Deletes stored copies in the background; `job` names the caller in what is logged. */
  async _removeLater(ids, job = 'removeStaleSessions') {
    let failures;
    try {
      failures = await this.backend.removeLater(ids);
    } catch (error) {
      failures = ids.map((id) => ({ id, code: error.code, message: error.message }));
    } finally {
      for (const id of ids) this.removing.delete(id);
    }
    for (const { id, code, message } of failures) {
      this.logger.error(`(${this.name}.${job}) cannot delete ${id}: ${code} ${message}`);
    }
  }

  _logSweep(summary) {
    const source = `(${this.name}.removeStaleSessions)`;
    for (const c of summary.corrupt) this.logger.warn(`${source} ${c.message}`);
    for (const u of summary.unreadable) this.logger.warn(`${source} ${u.code} ${u.message}`);
    for (const f of summary.failed) this.logger.error(`${source} cannot delete ${f.id}: ${f.code}`);
    this.logger.debug(
      `${source} checked ${summary.scanned} files, deleted ${summary.removed} stale and ` +
        `${summary.removedCorrupt} corrupt`,
    );
  }
}

module.exports = { CachedStore };
