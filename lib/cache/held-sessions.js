'use strict';

const { HeldIndex: NativeIndex } = require('../index.js');
const { clock } = require('./coarse-clock');

/**
 * `lastUsed` only drives expiry measured in minutes and days, so a cached `get` updates it at
 * most once a second per session: `updateLastUsed()`, a hooked property setter in rammerhead,
 * costs several times the rest of the lookup.
 */
const TOUCH_INTERVAL_MS = 1000;
/** Ids whose index entry may be out of date before they are sent to the index in one call. */
const SYNC_BATCH = 512;

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
    /** For stores that tell changes from what is stored: the stored copy's fingerprint. */
    this.stored = undefined;
    // For stores that keep versions (Redis), declared here so that every held session has one
    // shape and the hot path's property reads stay monomorphic: the stored version this copy
    // is based on (undefined: created here), the merge base of that copy, the copies of its
    // writes whose outcome it has not learnt (null: none), merges in a row, and whether cookie
    // changes are watched.
    this.version = undefined;
    this.base = undefined;
    this.sent = null;
    this.conflicts = 0;
    this.watched = false;
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
 * longer than X" and "expired" in time proportional to the sessions due. The Map is the truth;
 * the index follows it in batches, sent before every query and on the next turn of the event
 * loop once SYNC_BATCH ids wait, so the hot path makes no native call and a session costs at
 * most one index update per second of use. The index learns a session's times when it is held
 * and when the store calls `updateLastUsed()`; times set on a held session by other code count
 * only from the store's next update of it.
 */
class HeldSessions {
  constructor() {
    /** id -> Held: the hot path of `get` and `has` is one lookup here. */
    this.map = new Map();
    this.index = new NativeIndex();
    /** Ids whose index entry may be out of date, each once. */
    this.outOfDate = new Set();
    this.syncScheduled = false;
  }

  /** Holds `session` under `id`, replacing what was held; returns its Held. */
  hold(id, session) {
    const held = new Held(id, session);
    this.map.set(id, held);
    this._changed(id);
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
    this._changed(held.id);
  }

  /** Drops `held` if it is still the one held under its id; returns whether it was. */
  drop(held) {
    if (this.map.get(held.id) !== held) return false;
    this.map.delete(held.id);
    this._changed(held.id);
    return true;
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

  /** The index, up to date: every id it holds is in the Map. */
  syncedIndex() {
    this.sync();
    return this.index;
  }

  /** Brings the index up to date with the Map. */
  sync() {
    if (this.outOfDate.size === 0) return;
    const ids = [];
    const createdAt = [];
    const lastUsed = [];
    const removed = [];
    for (const id of this.outOfDate) {
      const held = this.map.get(id);
      if (held === undefined || !held.indexed) {
        removed.push(id);
        continue;
      }
      const [created, used] = timesOf(held.session);
      ids.push(id);
      createdAt.push(created);
      lastUsed.push(used);
    }
    this.outOfDate.clear();
    if (removed.length > 0) this.index.remove(removed);
    if (ids.length > 0) {
      this.index.record(ids, Float64Array.from(createdAt), Float64Array.from(lastUsed));
    }
  }

  _changed(id) {
    this.outOfDate.add(id);
    if (this.outOfDate.size < SYNC_BATCH || this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      this.sync();
    });
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

module.exports = { HeldSessions, timeOf };
