'use strict';

const { performance } = require('perf_hooks');

/** Longest stretch a round holds the event loop before it yields. */
const SLICE_MS = 1;
/** At most this many prompt writes per slice, however fast the clock says they went. */
const MAX_PROMPT_PER_SLICE = 64;
/**
 * How long after a cookie change a session is written: changes made in the same moment (the
 * responses of one page load finishing together) go in one write, and the next request of the
 * page, which may reach another host, finds the change there.
 */
const PROMPT_DELAY_MS = 1;
/**
 * How long a session stays watched after its last use (which `get` records at most once a
 * second), so that cookies set by a response that ends well after its request (a slow
 * download) are still stored within a round.
 */
const WATCHED_AFTER_USE_MS = 30 * 1000;

/**
 * Keeps what Redis holds close to what the store holds, one round every `writeInterval`:
 * - held sessions that changed since they were stored (told by `changeFingerprint`, which
 *   ignores what every use rewrites) are written, so another host loading them sees their
 *   cookies within about a round; unchanged ones are not;
 * - the expiry of sessions used since the last round is refreshed, in one batch;
 * - sessions whose stored copy is gone (deleted by another process, or expired) leave memory;
 * - when Redis has lost its data (restarted empty), every held session is written back;
 * - sessions that could not be written (Redis down) are written once Redis is back.
 */
class ChangeWriter {
  /** @param {import('./redis-store').RammerheadSessionRedisStore} store */
  constructor(store) {
    this.store = store;
    /** Held -> [round, time] of its last use, for the sessions watched for changes. */
    this.recent = new Map();
    this.round = 0;
    /** Held sessions whose cookies changed, to be written within PROMPT_DELAY_MS. */
    this.prompt = new Set();
    this.promptTimer = null;
    /** The data set's token when last seen; another one means Redis lost its data. */
    this.dataset = undefined;
    this.running = null;
    // Known before the store holds anything, so that a loss right after is noticed.
    if (store.backend.available) {
      try {
        this.dataset = store.backend.checkNow(store.staleCleanupOptions);
      } catch (error) {
        store.logger.warn(`(${store.name}) cannot reach Redis: ${error.code} ${error.message}`);
      }
    }
  }

  /** The session was used now. */
  used(held) {
    this.recent.set(held, [this.round, Date.now()]);
  }

  /**
   * Writes the held session within a few milliseconds, not at the next round: its cookies
   * changed, or it was merged with a newer copy, and other hosts are to see it soon. A session
   * whose write is under way is written once that write is done.
   */
  writeSoon(held) {
    // Down: the first round once Redis is back writes it.
    if (!this.store.backend.available) return;
    this.prompt.add(held);
    this._promptLater();
  }

  /** Drops the writes asked for by `writeSoon`: `close()` writes every changed session. */
  stop() {
    clearTimeout(this.promptTimer);
    this.promptTimer = null;
    this.prompt.clear();
  }

  /**
   * Writes the sessions `writeSoon` named, for at most a slice: many may be named at once (a
   * fetch merging a batch of copies changed elsewhere), and the rest wait for the next turn.
   */
  _writePrompt() {
    this.promptTimer = null;
    const { store } = this;
    const deadline = performance.now() + SLICE_MS;
    const underWay = [];
    let taken = 0;
    for (const held of this.prompt) {
      if (taken++ === MAX_PROMPT_PER_SLICE || performance.now() >= deadline) break;
      this.prompt.delete(held);
      if (!this._isStaying(held)) continue;
      if (store.backend.isWriting(held.id)) underWay.push(held);
      else this._writeIfChanged(held);
    }
    // Named again after the loop: a Set visits what is added to it while it is iterated.
    for (const held of underWay) this.writeSoon(held);
    if (this.prompt.size > 0) this._promptLater();
  }

  _promptLater() {
    if (this.promptTimer !== null) return;
    this.promptTimer = setTimeout(() => this._writePrompt(), PROMPT_DELAY_MS);
    this.promptTimer.unref();
  }

  /** Runs one round, unless one is running; resolves once its writes are handed over. */
  run() {
    if (this.running) return this.running;
    const { store } = this;
    this.running = this._round()
      // A round runs from a timer: whatever goes wrong is logged, never thrown into the process.
      .catch((error) => store.logger.error(`(${store.name}.writeChanges) ${error.stack}`))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  async _round() {
    const { store } = this;
    if (!store.backend.available) return;
    const round = this.round++;
    let dataset;
    try {
      dataset = await store.backend.check(store.staleCleanupOptions);
    } catch (error) {
      store.logger.warn(`(${store.name}) cannot reach Redis: ${error.code} ${error.message}`);
      return;
    }
    if (this.dataset !== undefined && dataset !== this.dataset) this._writeAllBack();
    this.dataset = dataset;
    const refresh = await this._writeChanged(round);
    if (refresh.length > 0) await this._refresh(refresh);
  }

  _writeAllBack() {
    const { store } = this;
    store.logger.warn(
      `(${store.name}) Redis has lost its data; writing back the ${store.sessions.size} sessions held here`,
    );
    for (const held of store.sessions.values()) store.unwritten.add(held);
  }

  /** Writes the changed sessions, in slices; returns the ids whose expiry is to be refreshed. */
  async _writeChanged(round) {
    const { store } = this;
    /** Held sessions whose expiry is to be refreshed, as they were when named. */
    const refresh = [];
    let deadline = performance.now() + SLICE_MS;
    for (const held of this._candidates()) {
      if (performance.now() >= deadline) {
        await new Promise((resolve) => setImmediate(resolve));
        deadline = performance.now() + SLICE_MS;
      }
      // No longer watched, gone meanwhile, being written out of memory, or a write under way.
      if (held === null || !this._isStaying(held) || store.backend.isWriting(held.id)) continue;
      const unchanged = this._writeIfChanged(held) === null;
      if (unchanged && this.recent.has(held) && this.recent.get(held)[0] >= round - 1) {
        refresh.push(held);
      }
    }
    return refresh;
  }

  /**
   * The held sessions a round looks at, named one at a time so that naming them is sliced with
   * the rest: those not stored yet, then those watched. A session no longer watched is forgotten
   * and named as null, so that forgetting many at once (all those loaded together, a watch
   * later) is sliced too.
   */
  *_candidates() {
    const { store } = this;
    yield* Array.from(store.unwritten);
    const watchedSince = Date.now() - WATCHED_AFTER_USE_MS;
    for (const [held, [, usedAt]] of this.recent) {
      if (usedAt < watchedSince || store.sessions.get(held.id) !== held) {
        this.recent.delete(held);
        yield null;
      } else if (!store.unwritten.has(held)) {
        // Unwritten: named above, or since, for the next round.
        yield held;
      }
    }
  }

  /** Still held, and not being written out of memory. */
  _isStaying(held) {
    return this.store.sessions.get(held.id) === held && !held.leaving;
  }

  /** Writes the held session if it changed since it was stored; what `changedCopy` said. */
  _writeIfChanged(held) {
    const changed = this.store.changedCopy(held, 'writeChanges');
    if (changed) this.store.writeStaying(held, changed.json, undefined, changed.fingerprint);
    return changed;
  }

  async _refresh(helds) {
    const { store } = this;
    let gone;
    try {
      gone = await store.backend.refresh(
        helds.map((held) => held.id),
        this.dataset,
      );
    } catch (error) {
      store.logger.warn(`(${store.name}) cannot refresh expiry: ${error.code} ${error.message}`);
      return;
    }
    // Lost with the data set, not deleted: the next round writes everything back.
    if (gone === null) return;
    const named = new Map(helds.map((held) => [held.id, held]));
    for (const id of gone) {
      const held = store.sessions.get(id);
      // Held anew since it was named (loaded again, or imported): that copy is another one.
      if (held === undefined || held !== named.get(id)) continue;
      // Changed here since, or being written: that write decides.
      if (store.unwritten.has(held) || store.backend.isWriting(id)) continue;
      store.logger.debug(`(${store.name}) ${id} was deleted or has expired in Redis; dropping it`);
      store.forget(held);
      this.recent.delete(held);
    }
  }
}

module.exports = { ChangeWriter };
