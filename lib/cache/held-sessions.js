// @ts-check
'use strict';

const { HeldIndex } = require('../../index.js');
const { clock } = require('./coarse-clock');

/**
 * `lastUsed` only drives expiry measured in minutes and days, so a cached `get` updates it at
 * most once a second per session: `updateLastUsed()`, a hooked property setter in rammerhead,
 * costs several times the rest of the lookup.
 */
const TOUCH_INTERVAL_MS = 1000;
/** Ids whose index entry may be out of date before the index is brought up to date. */
const SYNC_BATCH = 512;
/** Ids brought up to date per turn of the event loop, at most, in the background. */
const SYNC_PER_TURN = 256;
/** Ids asked of the index at once by `usedSince`. */
const USED_PAGE = 256;

/** Why a held session leaves memory: every path out of memory names one. */
const Cause = Object.freeze({
  /** `delete()`. */
  DELETED: 'deleted',
  /** Replaced by `addSerializedSession`. */
  REPLACED: 'replaced by an import',
  /** Past `staleTimeout` or `maxToLive`. */
  EXPIRED: 'expired',
  /** Idle for longer than `cacheTimeout`, and stored. */
  IDLE: 'idle, stored',
  /** Never used: dropped unstored, as the original does with `deleteUnused`. */
  UNUSED: 'never used',
  /** Unchanged since stored: dropped without a write. */
  UNCHANGED: 'unchanged since stored',
  /** Stored by `close()`. */
  CLOSED: 'stored at close',
  /** Deleted by another host. */
  DELETED_ELSEWHERE: 'deleted by another host',
  /** Gone from the backend (expired there, or deleted by a process that does not announce). */
  GONE: 'gone from the backend',
});

/** A timestamp as the index orders it: anything but a finite number is never due. */
function timeOf(value) {
  return Number.isFinite(value) ? value : NaN;
}

/** A session's `createdAt` and `lastUsed`; a getter that throws gives times never due. */
function timesOf(session) {
  try {
    return [timeOf(session.createdAt), timeOf(session.lastUsed)];
  } catch {
    return [NaN, NaN];
  }
}

/**
 * The JSON of a held session, or undefined when it cannot be serialized now (a session class's
 * getter that throws, say); `failed(error)` is told why.
 */
function serialized(held, failed) {
  try {
    return held.session.serializeSession();
  } catch (error) {
    failed(error);
    return undefined;
  }
}

/** `serialized`, logging why not as `(source) cannot serialize <id>: <why>`. */
function serializedOrLogged(held, logger, source) {
  return serialized(held, (error) =>
    logger.error(`(${source}) cannot serialize ${held.id}: ${error.message}`),
  );
}

/** One session held in memory, with what the store knows of it. */
class Held {
  constructor(id, session) {
    this.id = id;
    this.session = session;
    /** When a `get` last called `updateLastUsed()`, by the coarse clock; never: -Infinity. */
    this.touchedAt = -Infinity;
    /**
     * Counts the writes of this session started so far: the settling of a write that is not
     * the latest says nothing about what is stored (a later one may have failed).
     */
    this.writes = 0;
    /** Being written before it leaves memory; a `get` takes it back. */
    this.leaving = false;
    /** Listed by the index; a session a job has set aside is not, until the job ends. */
    this.indexed = true;
    /**
     * What a backend that versions its copies knows of the copy this one is based on (see
     * `Copies`); null for the others. Declared here, so that every held session has one shape
     * and the hot path's property reads stay monomorphic.
     */
    this.copy = null;
  }

  /** Whether a `get` should call `updateLastUsed()` now. */
  isTouchDue() {
    return this.touchedAt <= clock.now - TOUCH_INTERVAL_MS;
  }

  wasTouched() {
    return this.touchedAt !== -Infinity;
  }
}

/**
 * The sessions a store holds, by id, and their index in the core, which answers "idle for
 * longer than X", "expired" and "used since" in time proportional to the sessions it names.
 * The Map is the truth; the index follows it in batches, so the hot path makes no native call
 * and a session costs at most one index update per second of use. The index learns a session's
 * times when it is held and when the store calls `updateLastUsed()`; times set on a held
 * session by other code count only from the store's next update of it.
 *
 * Once SYNC_BATCH ids wait, the index is brought up to date in the background, in slices (a
 * burst of loads leaves its index work to later turns). A query brings it fully up to date
 * first, so a background job asks `catchUp()` before its first query. What left the index
 * (sessions dropped or set aside) is sent at once before `keys()` lists stored ids beside it.
 */
class HeldSessions {
  /**
   * @param {import('./housekeeper').Housekeeper} housekeeper runs the background updates
   * @param {{ debug: (message: string) => void }} logger told of every session that leaves
   * @param {string} name the store's name in its messages
   */
  constructor(housekeeper, logger, name) {
    this.housekeeper = housekeeper;
    this.logger = logger;
    this.name = name;
    /** id -> Held: the hot path of `get` and `has` is one lookup here. */
    this.map = new Map();
    this.index = new HeldIndex();
    /** Ids whose index entry may be out of date, each once. */
    this.outOfDate = new Set();
    /** Ids dropped or set aside since the index last heard of them. */
    this.leftIndex = new Set();
    /** The background update under way, if any, and the ids it has yet to send. */
    this.syncing = null;
    this.syncingIds = new Set();
  }

  /**
   * Holds `session` under `id`, replacing what was held; returns its Held. `touch`: it is used
   * now (see `touch`).
   */
  hold(id, session, touch = false) {
    const held = new Held(id, session);
    this.map.set(id, held);
    if (touch) this.touch(held);
    else this._changed(id);
    return held;
  }

  /** Calls `updateLastUsed()` for a `get`; see TOUCH_INTERVAL_MS. */
  touch(held) {
    held.session.updateLastUsed();
    held.touchedAt = clock.now;
    this._changed(held.id);
  }

  /** Keeps `held` out of the index's answers, or puts it back. */
  setIndexed(held, indexed) {
    held.indexed = indexed;
    if (!indexed) this.leftIndex.add(held.id);
    this._changed(held.id);
  }

  /**
   * Drops `held`, for `cause` (a `Cause`), if it is still the one held under its id; returns
   * whether it was.
   */
  drop(held, cause) {
    if (this.map.get(held.id) !== held) return false;
    this.map.delete(held.id);
    this.leftIndex.add(held.id);
    this._changed(held.id);
    this.logger.debug(`(${this.name}) ${held.id} leaves memory: ${cause}`);
    return true;
  }

  /** Whether `held` is still the one held under its id. */
  holds(held) {
    return this.map.get(held.id) === held;
  }

  /** Up to `limit` held sessions unused for longer than `timeout` at `now`, oldest first. */
  idle(now, timeout, limit) {
    this.sync();
    return this._held(this.index.idle(now, timeout, limit));
  }

  /** Up to `limit` held sessions that break either limit at `now` (null disables one). */
  expired(now, staleTimeout, maxToLive, limit) {
    this.sync();
    return this._held(this.index.expired(now, staleTimeout, maxToLive, limit));
  }

  /**
   * The held sessions last used at `since` or later, the most recently used first, read a page
   * at a time as they are iterated (so a sliced loop never waits for all of them at once). One
   * used again meanwhile is not named again.
   */
  *usedSince(since) {
    let nextAt = null;
    let nextSlot = null;
    do {
      this.sync();
      const page = this.index.usedSince(since, nextAt, nextSlot, USED_PAGE);
      yield* this._held(page.ids);
      ({ nextAt = null, nextSlot = null } = page);
    } while (nextAt !== null);
  }

  /**
   * The index, holding nothing but held sessions (it may not hold every one of them yet): what
   * it holds, a listing of stored ids may leave out.
   */
  indexOfHeld() {
    if (this.leftIndex.size === 0) return this.index;
    const gone = [];
    for (const id of this.leftIndex) {
      const held = this.map.get(id);
      if (held === undefined || !held.indexed) gone.push(id);
    }
    this.leftIndex.clear();
    if (gone.length > 0) this.index.remove(gone);
    return this.index;
  }

  /** Brings the index up to date with the Map. */
  sync() {
    if (this.outOfDate.size === 0 && this.syncingIds.size === 0) return;
    const ids = [...this.syncingIds, ...this.outOfDate];
    this.syncingIds.clear();
    this.outOfDate.clear();
    this.leftIndex.clear();
    this._sync(ids);
  }

  /**
   * For a background job about to query the index: brings it up to date at once when little
   * waits, else returns a promise of the background update's end, so that no query catches up
   * on a burst at once.
   */
  catchUp() {
    if (this.outOfDate.size < SYNC_BATCH && this.syncing === null) {
      this.sync();
      return undefined;
    }
    return this._syncInBackground();
  }

  _changed(id) {
    this.outOfDate.add(id);
    if (this.outOfDate.size >= SYNC_BATCH) this._syncInBackground();
  }

  /**
   * Brings the index up to date in the housekeeper's slices with the ids out of date now;
   * resolves when it is. Ids changed meanwhile wait for the next run, so that a run ends
   * however busy the store is. None runs once the housekeeper is stopped (the store closed):
   * a query then brings the index up to date itself.
   */
  _syncInBackground() {
    if (this.syncing !== null) return this.syncing;
    if (this.housekeeper.stopped) return Promise.resolve();
    let batch = [];
    const sendBatch = () => {
      this._sync(batch);
      batch = [];
    };
    this.syncingIds = this.outOfDate;
    this.outOfDate = new Set();
    // Read lazily, leaving the set as it goes: `sync()` sends what is left at once.
    const take = function* (ids) {
      for (const id of ids) {
        ids.delete(id);
        yield id;
      }
    };
    this.syncing = this.housekeeper
      .inSlices(take(this.syncingIds), (next) => batch.push(next), {
        maxPerTurn: SYNC_PER_TURN,
        afterTurn: sendBatch,
      })
      .then(() => {
        this.syncing = null;
        // Many changed meanwhile: the next run starts at once, as a change would start it.
        if (this.outOfDate.size >= SYNC_BATCH) this._syncInBackground();
      });
    return this.syncing;
  }

  /** Sends the current entries of `ids` (or their removal) to the index, in one call each. */
  _sync(ids) {
    if (ids.length === 0) return;
    const recorded = [];
    const createdAt = [];
    const lastUsed = [];
    const removed = [];
    for (const id of ids) {
      const held = this.map.get(id);
      if (held === undefined || !held.indexed) {
        removed.push(id);
        continue;
      }
      const [created, used] = timesOf(held.session);
      recorded.push(id);
      createdAt.push(created);
      lastUsed.push(used);
    }
    if (removed.length > 0) this.index.remove(removed);
    if (recorded.length > 0) {
      this.index.record(recorded, Float64Array.from(createdAt), Float64Array.from(lastUsed));
    }
  }

  _held(ids) {
    const found = [];
    for (const id of ids) {
      const held = this.map.get(id);
      if (held !== undefined) found.push(held);
    }
    return found;
  }
}

module.exports = { Cause, Held, HeldSessions, serialized, serializedOrLogged, timeOf };
