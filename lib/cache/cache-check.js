// @ts-check
'use strict';

const { itemOf } = require('./copies');
const { isIdle } = require('./expiry');
const { Cause } = require('./held-sessions');

/** Candidates asked of the index at once. */
const BATCH = 64;
/** Sessions that may be waiting to be written before a check serializes more. */
const MAX_QUEUED = 1024;

/**
 * One cache check: sessions whose stored copy may be missing or old are written while they stay
 * (first), then the held sessions idle for longer than the cache timeout leave memory, written
 * first unless never used or unchanged since stored; the check ends once every write of it has
 * settled. Both passes run in the housekeeper's slices, and wait while too many writes are
 * queued: serializing outruns most disks, and the wait bounds what a check holds in memory.
 */
class CacheCheck {
  /** @param {import('./cached-store').CachedStore} cache */
  constructor(cache, now) {
    this.cache = cache;
    this.now = now;
    /** id -> the write of a leaving session, for every one not settled yet. */
    this.leaving = new Map();
    /** Writes of sessions that stay in memory not settled yet. */
    this.staying = 0;
    /** Held sessions kept out of the index's answers until the check ends. */
    this.setAside = [];
    /** Written and out of memory; released to the backend once per report. */
    this.released = [];
    /** Leaving sessions serialized in this turn, queued in one batch at its end. */
    this.batch = [];
    /**
     * Called when a report leaves room for writes, or settles the last one.
     * @type {() => void}
     */
    this.wake = () => {};
    this.done = new Promise((resolve) => {
      this._resolve = resolve;
    });
  }

  start() {
    this._run().then(this._resolve, (error) => {
      this.cache.logger.error(`(${this.cache.name}.checkCache) ${error.stack}`);
      this._resolve();
    });
    return this.done;
  }

  /** The sessions this check is writing out of memory right now. */
  *leavingSessions() {
    for (const write of this.leaving.values()) if (write.held.leaving) yield write.held;
  }

  async _run() {
    const { cache } = this;
    const { housekeeper, backend } = cache;
    const stopReporting = backend.onWritesReported(() => {
      backend.release(this.released.splice(0));
      this.wake();
    });
    try {
      const waiting = cache.held.catchUp();
      if (waiting) await waiting;
      await housekeeper.inSlices(this._candidates(), ([pass, held]) => pass.call(this, held), {
        beforeTurn: () => this._roomForWrites(),
        afterTurn: () => this._queueBatch(),
      });
      await this._settled();
    } finally {
      stopReporting();
      backend.release(this.released.splice(0));
      for (const held of this.setAside) {
        if (!held.leaving) cache.held.setIndexed(held, true);
      }
    }
  }

  /** Nothing while a check may add writes; else a promise of room for them. */
  _roomForWrites() {
    const { backend } = this.cache;
    if (backend.writesPending < MAX_QUEUED) return undefined;
    return new Promise((resolve) => {
      this.wake = () => {
        if (backend.writesPending >= MAX_QUEUED / 2) return;
        this.wake = () => {};
        resolve(undefined);
      };
    });
  }

  /** Resolves once every write this check started has settled. */
  async _settled() {
    while (this.leaving.size > 0 || this.staying > 0) {
      await new Promise((resolve) => {
        this.wake = () => resolve(undefined);
      });
    }
  }

  /**
   * What the check looks at, with the pass that handles each: the unwritten sessions, then the
   * held sessions idle at the check's time, named by the index, longest idle first.
   */
  *_candidates() {
    for (const held of Array.from(this.cache.unwritten)) yield [this._retry, held];
    const { held: heldSessions, cacheTimeout } = this.cache;
    for (;;) {
      const due = heldSessions.idle(this.now, cacheTimeout, BATCH);
      if (due.length === 0) return;
      for (const held of due) yield [this._leave, held];
    }
  }

  /** Writes a session whose stored copy may be missing or old, unless it is about to leave. */
  _retry(held) {
    const { cache } = this;
    if (!cache.unwritten.has(held) || !cache.held.holds(held)) return;
    if (this._isIdle(held) || cache.backend.isWriting(held.id)) return;
    const json = cache.serialize(held, 'checkCache');
    if (json === undefined) return;
    this.staying++;
    cache.write(held, json, {
      then: () => {
        this.staying--;
        this.wake();
      },
    });
  }

  _leave(held) {
    const { cache } = this;
    // Dropped meanwhile, used since it was indexed, or already leaving (taken back and met
    // again): not now.
    if (!cache.held.holds(held)) return;
    if (!this._isIdle(held) || this.leaving.has(held.id)) {
      this._setAside(held);
      return;
    }
    const cause = cache._fate(held);
    if (cause !== undefined) {
      cache.drop(held, cause);
      this.released.push(held.id);
      return;
    }
    const json = cache.serialize(held, 'checkCache');
    // It cannot be written now; it waits for the next check.
    if (json === undefined) {
      this._setAside(held);
      return;
    }
    held.leaving = true;
    cache.held.setIndexed(held, false);
    const write = cache._startWrite(held, json, { leaving: true });
    this.leaving.set(held.id, write);
    this.batch.push(itemOf(write, json));
  }

  /** Queues the leaving sessions serialized in this turn, and releases those gone. */
  _queueBatch() {
    const { backend } = this.cache;
    backend.release(this.released.splice(0));
    if (this.batch.length === 0) return;
    const items = this.batch.splice(0);
    backend.queueWrites(items, (id, failure, version) => {
      this._settleLeaving(id, { failure, version });
      this.wake();
    });
  }

  _settleLeaving(id, result) {
    const write = this.leaving.get(id);
    if (write === undefined) return;
    this.leaving.delete(id);
    const { cache } = this;
    const { held } = write;
    // Taken back by a get, deleted or replaced meanwhile: nothing left to do here.
    if (!held.leaving || !cache.held.holds(held)) return;
    held.leaving = false;
    const settled = cache._settle(write, result);
    if (settled.superseded) {
      // Written again since (by close()): that write decides, and the session stays.
      cache.held.setIndexed(held, true);
    } else if (settled.stored) {
      cache.drop(held, Cause.IDLE);
      this.released.push(id);
    } else if (settled.dropped) {
      this.released.push(id);
    } else {
      // Merged with a newer copy (and written again), or kept in memory and retried at the
      // next check, so nothing is lost.
      this.setAside.push(held);
      if (settled.retry !== undefined) {
        cache.write(held, settled.retry);
      } else {
        const { code, message } = result.failure;
        cache.logger.error(
          `(${cache.name}.checkCache) cannot save ${id}, keeping it in memory: ${code} ${message}`,
        );
      }
    }
  }

  _isIdle(held) {
    return isIdle(held.session, this.now, this.cache.cacheTimeout);
  }

  _setAside(held) {
    this.cache.held.setIndexed(held, false);
    this.setAside.push(held);
  }
}

module.exports = { CacheCheck };
