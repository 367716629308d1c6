// @ts-check
'use strict';

const { performance } = require('perf_hooks');

/** Longest stretch the background work of one store holds the event loop in one turn. */
const BUDGET_MS = 1;

/** Resolves on a later turn of the event loop. */
function nextTurn() {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs a store's maintenance: its timers, and every background loop in slices. All loops of one
 * housekeeper share one time budget per turn of the event loop, and each has its own cap on the
 * items it handles per turn, so that however many sessions a job touches and however many jobs
 * run at once, the event loop is never held for long. Once stopped (the store is closed), no
 * timer fires or is made, and every loop running then ends at its next turn; a job asked for
 * explicitly afterwards still runs (a cache check after a `close()` that could not store
 * everything).
 */
class Housekeeper {
  constructor() {
    this.timers = new Set();
    this.stopped = false;
    /** Raised by `stop()`: loops started before it end. */
    this.generation = 0;
    /** When this turn's budget ends; it opens with the first slice of a turn. */
    this.deadline = 0;
    this.budgetOpen = false;
  }

  /** Calls `job` every `ms`; the timer does not keep the process running. */
  every(ms, job) {
    if (this.stopped) return null;
    const timer = setInterval(job, ms);
    timer.unref();
    this.timers.add(timer);
    return timer;
  }

  /** Calls `job` once, `ms` from now, unless cancelled or stopped first. */
  after(ms, job) {
    if (this.stopped) return null;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      job();
    }, ms);
    timer.unref();
    this.timers.add(timer);
    return timer;
  }

  /**
   * Calls `step(item)` for each item of `items` (any iterable, read lazily), in slices: each
   * turn handles at most `maxPerTurn` items and stops early once the turn's budget is spent,
   * though always after one item at least, so that a slow item still makes progress. The first
   * turn starts at once, in the caller's. `beforeTurn()` may return a promise to wait for first
   * (while the work it feeds piles up); `afterTurn()` runs at the end of each turn. Resolves with
   * true once every item is handled, false when the housekeeper stopped first.
   *
   * @template T
   * @param {Iterable<T>} items
   * @param {(item: T) => void} step
   * @param {{ maxPerTurn?: number, beforeTurn?: () => Promise<void> | undefined,
   *   afterTurn?: () => void }} [options]
   */
  async inSlices(items, step, { maxPerTurn = Infinity, beforeTurn, afterTurn } = {}) {
    const { generation } = this;
    const iterator = items[Symbol.iterator]();
    for (;;) {
      const wait = beforeTurn && beforeTurn();
      if (wait) await wait;
      if (this.generation !== generation) return false;
      this._openBudget();
      let handled = 0;
      for (;;) {
        const next = iterator.next();
        if (next.done) {
          if (afterTurn) afterTurn();
          return true;
        }
        step(next.value);
        if (++handled >= maxPerTurn || performance.now() >= this.deadline) break;
      }
      if (afterTurn) afterTurn();
      await nextTurn();
    }
  }

  /** Clears every timer; loops running now end at their next turn. */
  stop() {
    this.stopped = true;
    this.generation++;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Starts this turn's budget, unless a slice of this turn started it already. */
  _openBudget() {
    if (this.budgetOpen) return;
    this.budgetOpen = true;
    this.deadline = performance.now() + BUDGET_MS;
    // Scheduled before any loop of this turn yields, so it runs before they resume.
    setImmediate(() => {
      this.budgetOpen = false;
    });
  }
}

module.exports = { Housekeeper };
