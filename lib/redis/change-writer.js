// @ts-check
'use strict';

const { Cause, timeOf } = require('../cache/held-sessions');

/** At most this many prompt writes per turn, however fast the clock says they went. */
const MAX_PROMPT_PER_TURN = 64;
/**
 * How long after a cookie change a session is written: changes made in the same moment (the
 * responses of one page load finishing together) go in one write, and the next request of the
 * page, which may reach another host, finds the change there.
 */
const PROMPT_DELAY_MS = 1;
/**
 * How long a session stays watched for changes after its last use (which `get` records at most
 * once a second), so that cookies set by a response that ends well after its request (a slow
 * download) are still stored within a round.
 */
const WATCHED_AFTER_USE_MS = 30 * 1000;

/**
 * Keeps what Redis holds close to what the store holds, one round every `writeInterval`:
 * - held sessions that changed since they were stored (told by `changeFingerprint`, which
 *   ignores what every use rewrites) are written, so another host loading them sees their
 *   cookies within about a round; unchanged ones are not;
 * - the expiry of sessions used since the round before last is refreshed, in one batch;
 * - sessions whose stored copy is gone (deleted by another process, or expired) leave memory;
 * - when Redis has lost its data (restarted empty), every held session is written back;
 * - sessions that could not be written (Redis down) are written once Redis is back.
 * A cookie change made through hammerhead has its session written at once (see `writeSoon`).
 */
class ChangeWriter {
  /**
   * @param {object} cache the store's `view` of its cache
   * @param {import('../backends/redis-backend').RedisBackend} backend
   * @param {import('./versioned-copies').VersionedCopies} copies
   * @param {object | null} policy the store's `staleCleanupOptions`, written to Redis
   */
  constructor(cache, backend, copies, policy) {
    this.cache = cache;
    this.backend = backend;
    this.copies = copies;
    this.policy = policy;
    /** When the last two rounds started: the expiry of sessions used since then is refreshed. */
    this.starts = [];
    /** Held sessions whose cookies changed, to be written within PROMPT_DELAY_MS. */
    this.prompt = new Set();
    this.promptTimer = null;
    /** The data set's token when last seen; another one means Redis lost its data. */
    this.dataset = undefined;
    this.running = null;
    // Known before the store holds anything, so that a loss right after is noticed.
    if (backend.available) {
      try {
        this.dataset = backend.checkNow(policy);
      } catch (error) {
        cache.logger.warn(`(${cache.name}) cannot reach Redis: ${error.code} ${error.message}`);
      }
    }
  }

  /**
   * Writes the held session within a few milliseconds, not at the next round: its cookies
   * changed, and other hosts are to see it soon. A session whose write is under way is written
   * once that write is done.
   */
  writeSoon(held) {
    // Down: the first round once Redis is back writes it.
    if (!this.backend.available || this.cache.housekeeper.stopped) return;
    this.prompt.add(held);
    if (this.promptTimer !== null) return;
    this.promptTimer = this.cache.housekeeper.after(PROMPT_DELAY_MS, () => this._writePrompt());
  }

  /**
   * Writes the held session at once if it changed since it was stored (after the write of it
   * under way, which may hold an older copy, has ended). Resolves once its stored copy holds
   * what the session held when asked, or that write failed; undefined when there is nothing
   * to write. Never rejects.
   *
   * @returns {Promise<void> | undefined}
   */
  storeNow(held) {
    if (!this._isStaying(held)) return undefined;
    // Written now: the quick write its cookie change asked for would find nothing new.
    this.prompt.delete(held);
    if (this.backend.isWriting(held.id)) {
      return this._afterWritesOf(held.id).then(() => this.storeNow(held));
    }
    let settle = (_) => {};
    const done = new Promise((resolve) => {
      settle = resolve;
    });
    // Written again since (superseded): that later write holds this change too.
    const changed = this._writeIfChanged(held, {
      likely: true,
      then: (settled) => settle(settled.superseded ? this.storeNow(held) : undefined),
    });
    return changed ? done : undefined;
  }

  /** Resolves once no write of `id` is queued or under way. */
  _afterWritesOf(id) {
    return new Promise((resolve) => {
      const stop = this.backend.onWritesReported(() => {
        if (this.backend.isWriting(id)) return;
        stop();
        resolve(undefined);
      });
    });
  }

  /** Runs one round, unless one is running; resolves once its writes are handed over. */
  run() {
    if (this.running) return this.running;
    const { cache } = this;
    this.running = this._round()
      // A round runs from a timer: whatever goes wrong is logged, never thrown into the process.
      .catch((error) => cache.logger.error(`(${cache.name}.writeChanges) ${error.stack}`))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /**
   * Writes the sessions `writeSoon` named, in slices: many may be named at once (a fetch
   * merging a batch of copies changed elsewhere).
   */
  _writePrompt() {
    this.promptTimer = null;
    const named = Array.from(this.prompt);
    this.prompt.clear();
    this.cache.housekeeper.inSlices(
      named,
      (held) => {
        if (!this._isStaying(held)) return;
        if (this.backend.isWriting(held.id)) this.writeSoon(held);
        else this._writeIfChanged(held, { likely: true });
      },
      { maxPerTurn: MAX_PROMPT_PER_TURN },
    );
  }

  async _round() {
    const { cache, backend } = this;
    if (!backend.available) return;
    const usedSince = this.starts.length === 2 ? this.starts[0] : -Infinity;
    this.starts = [...this.starts, Date.now()].slice(-2);
    let dataset;
    try {
      dataset = await backend.check(this.policy);
    } catch (error) {
      cache.logger.warn(`(${cache.name}) cannot reach Redis: ${error.code} ${error.message}`);
      return;
    }
    if (this.dataset !== undefined && dataset !== this.dataset) this._writeAllBack();
    this.dataset = dataset;
    const refresh = await this._writeChanged(usedSince);
    if (refresh.length > 0) await this._refresh(refresh);
  }

  _writeAllBack() {
    const { cache } = this;
    cache.logger.warn(
      `(${cache.name}) Redis has lost its data; writing back the ${cache.held.map.size} sessions held here`,
    );
    for (const held of cache.held.map.values()) cache.markUnwritten(held);
  }

  /**
   * Writes the changed sessions, in slices; returns those unchanged but used since
   * `usedSince`, whose expiry is to be refreshed.
   */
  async _writeChanged(usedSince) {
    const refresh = [];
    const look = (held) => {
      // Gone meanwhile, being written out of memory, or a write under way.
      if (!this._isStaying(held) || this.backend.isWriting(held.id)) return;
      const unchanged = this._writeIfChanged(held) === null;
      if (unchanged && timeOf(held.session.lastUsed) >= usedSince) refresh.push(held);
    };
    const waiting = this.cache.held.catchUp();
    if (waiting) await waiting;
    await this.cache.housekeeper.inSlices(this._candidates(), look);
    return refresh;
  }

  /**
   * The held sessions a round looks at, named one at a time so that naming them is sliced with
   * the rest: those not stored yet, then those used lately.
   */
  *_candidates() {
    const { cache } = this;
    yield* cache.unwritten();
    for (const held of cache.held.usedSince(Date.now() - WATCHED_AFTER_USE_MS)) {
      // Unwritten: named above, or since, for the next round.
      if (!cache.isUnwritten(held)) yield held;
    }
  }

  /** Still held, and not being written out of memory. */
  _isStaying(held) {
    return this.cache.held.holds(held) && !held.leaving;
  }

  /**
   * Writes the held session if it changed since it was stored; what `changedCopy` said.
   * `likely`: a cookie changed (or a route ran), so it has most likely changed; `then` as for
   * the cache's `write`.
   */
  _writeIfChanged(held, { likely = false, then = undefined } = {}) {
    const { cache } = this;
    const changed = this.copies.changedCopy(held, cache.isUnwritten(held), likely);
    if (changed) cache.write(held, changed.json, { known: changed.known, then });
    return changed;
  }

  async _refresh(helds) {
    const { cache, backend } = this;
    let gone;
    try {
      gone = await backend.refresh(
        helds.map((held) => held.id),
        this.dataset,
      );
    } catch (error) {
      cache.logger.warn(`(${cache.name}) cannot refresh expiry: ${error.code} ${error.message}`);
      return;
    }
    // Lost with the data set, not deleted: the next round writes everything back.
    if (gone === null) return;
    const named = new Map(helds.map((held) => [held.id, held]));
    for (const id of gone) {
      const held = cache.held.map.get(id);
      // Held anew since it was named (loaded again, or imported): that copy is another one.
      if (held === undefined || held !== named.get(id)) continue;
      // Changed here since, or being written: that write decides.
      if (cache.isUnwritten(held) || backend.isWriting(id)) continue;
      cache.drop(held, Cause.GONE);
    }
  }
}

module.exports = { ChangeWriter };
