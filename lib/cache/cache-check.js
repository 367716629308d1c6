'use strict';

const { performance } = require('perf_hooks');
const { timeOf } = require('./held-sessions');

/** Longest stretch a cache check holds the event loop before it yields. */
const SLICE_MS = 1;
/** Candidates asked of the index at once. */
const BATCH = 64;
/** Sessions that may be waiting to be written before a check serializes more. */
const MAX_QUEUED = 1024;

/**
 * One cache check: the held sessions idle for longer than the cache timeout leave memory
 * (written first, unless never used), and sessions whose file may be missing or old are written
 * while they stay. Its phases run in order: `retrying` (writes of the unwritten sessions),
 * `evicting` (the idle sessions, as the index names them), `writing` (waiting for the last
 * writes), `done`; `paused` stands in for either of the first two while too many writes wait.
 */
class CacheCheck {
  /** @param {import('./cached-store').CachedStore} store */
  constructor(store, now) {
    this.store = store;
    this.now = now;
    this.phase = 'retrying';
    /** The phase to go back to after a pause. */
    this.resumes = null;
    this.unwritten = Array.from(store.unwritten);
    /** id -> [held, its write, its JSON], for every write of a leaving session not settled yet. */
    this.leaving = new Map();
    /** Writes of sessions that stay in memory not settled yet. */
    this.staying = 0;
    /** Held sessions kept out of the index's answers until the check ends. */
    this.setAside = [];
    /** Written and out of memory; released to the backend once per report. */
    this.released = [];
    this.done = new Promise((resolve) => {
      this._resolve = resolve;
    });
  }

  start() {
    this._slice();
    return this.done;
  }

  /** The sessions this check is writing out of memory right now. */
  *leavingSessions() {
    for (const [held] of this.leaving.values()) if (held.leaving) yield held;
  }

  /** After each report of background writes. */
  onWritesReported() {
    this.store.backend.release(this.released.splice(0));
    if (this.phase === 'paused' && this.store.backend.writesPending < MAX_QUEUED / 2) {
      this.phase = this.resumes;
      setImmediate(() => this._slice());
    } else {
      this._finishIfWritten();
    }
  }

  _slice() {
    // Serializing outruns most disks; waiting here bounds what the check holds in memory.
    if (this.store.backend.writesPending >= MAX_QUEUED) {
      this.resumes = this.phase;
      this.phase = 'paused';
      return;
    }
    const deadline = performance.now() + SLICE_MS;
    const batch = { ids: [], contents: [] };
    if (this.phase === 'retrying') this._retrySlice(deadline);
    if (this.phase === 'evicting') this._evictSlice(deadline, batch);
    this.store.backend.release(this.released.splice(0));
    if (batch.ids.length > 0) {
      this.store.backend.queueWrites(batch.ids, batch.contents, (id, failure) =>
        this._settleLeaving(id, failure),
      );
    }
    if (this.phase === 'writing') this._finishIfWritten();
    // A write refused at once may have ended the check already.
    else if (this.phase !== 'done') setImmediate(() => this._slice());
  }

  /** Writes the sessions whose file may be missing or old and that are not about to leave. */
  _retrySlice(deadline) {
    const { store } = this;
    while (this.unwritten.length > 0) {
      const held = this.unwritten.pop();
      const due =
        store.fate(held, false) === 'write' &&
        !this._isIdle(held) &&
        !store.backend.isWriting(held.id);
      const json = due ? store.serialize(held, 'checkCache') : undefined;
      if (json !== undefined) {
        this.staying++;
        store.writeStaying(held, json, () => {
          this.staying--;
          this._finishIfWritten();
        });
      }
      if (performance.now() >= deadline) return;
    }
    this.phase = 'evicting';
  }

  /** Moves idle sessions out of memory, named by the index, oldest first. */
  _evictSlice(deadline, batch) {
    const { held: heldSessions, cacheTimeout } = this.store;
    for (;;) {
      const due = heldSessions.idle(this.now, cacheTimeout, BATCH);
      if (due.length === 0) {
        this.phase = 'writing';
        return;
      }
      for (const held of due) {
        this._evict(held, batch);
        // Serializing is the costly step, so the clock is read after each one.
        if (performance.now() >= deadline) return;
      }
    }
  }

  _evict(held, batch) {
    const { store } = this;
    // Used since it was indexed, or already leaving (taken back and met again): not now.
    if (!this._isIdle(held) || this.leaving.has(held.id)) return this._setAside(held);
    if (store.fate(held, true) === 'drop') {
      store.forget(held);
      this.released.push(held.id);
      return undefined;
    }
    const json = store.serialize(held, 'checkCache');
    // It cannot be written now; it waits for the next check.
    if (json === undefined) return this._setAside(held);
    held.leaving = true;
    store.held.setIndexed(held, false);
    this.leaving.set(held.id, [held, ++held.writes, json]);
    batch.ids.push(held.id);
    batch.contents.push(json);
    return undefined;
  }

  _settleLeaving(id, failure) {
    const [held, write, json] = this.leaving.get(id) || [];
    this.leaving.delete(id);
    const { store } = this;
    // Taken back by a get, deleted or replaced meanwhile: nothing left to do here.
    if (held !== undefined && held.leaving && store.held.map.get(id) === held) {
      held.leaving = false;
      if (held.writes !== write) {
        // Written again since (by close()): that write decides, and the session stays.
        store.held.setIndexed(held, true);
      } else if (failure === undefined) {
        store.forget(held);
        this.released.push(id);
      } else if (store.writeRefused(held, failure)) {
        // Merged with a newer copy (and written again), or deleted elsewhere and dropped.
        if (store.held.map.get(id) === held) this.setAside.push(held);
        else this.released.push(id);
      } else {
        // Kept in memory and retried at the next check, so nothing is lost.
        store.unconfirmed(held, json);
        store.unwritten.add(held);
        this.setAside.push(held);
        store.logger.error(
          `(${store.name}.checkCache) cannot save ${id}, keeping it in memory: ${failure.code} ${failure.message}`,
        );
      }
    }
    this._finishIfWritten();
  }

  _isIdle(held) {
    return this.now - timeOf(held.session.lastUsed) > this.store.cacheTimeout;
  }

  _setAside(held) {
    this.store.held.setIndexed(held, false);
    this.setAside.push(held);
    return undefined;
  }

  /** Ends the check once every idle session is handled and every write of it has settled. */
  _finishIfWritten() {
    if (this.phase !== 'writing' || this.leaving.size > 0 || this.staying > 0) return;
    this.phase = 'done';
    this.store.backend.release(this.released.splice(0));
    for (const held of this.setAside) {
      if (!held.leaving) this.store.held.setIndexed(held, true);
    }
    this._resolve();
  }
}

module.exports = { CacheCheck };
