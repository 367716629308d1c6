// @ts-check
'use strict';

/**
 * The JavaScript side of the core's write queue. One background task writes at a time: on a
 * small machine, parallel writers would take the CPU from the JavaScript thread instead of
 * leaving it to requests. Every queued write is settled exactly once, in queue order: the core
 * gives each write a ticket, and reports name the writes they settle by ticket, never by id, so
 * no id, however odd, can leave a write unsettled or settle another's.
 */
class BackgroundWrites {
  /**
   * @param {{ writeQueued(): Promise<import('../../index').WriteReport> }} native the core's
   *   queue, as bound
   * @param {(items: import('./contract').WriteItem[]) => import('../../index').QueuedBatch}
   *   queueNative hands items to the core's queue
   */
  constructor(native, queueNative) {
    this.native = native;
    this.queueNative = queueNative;
    /**
     * ticket -> [id, settle] of every queued write not yet settled, oldest first. Never the
     * JSON: kept until its write settles, a large session's text would outlive the young
     * generation, and a round writing many sessions fill the old one.
     */
    this.waiting = new Map();
    /** id -> how many of its writes are waiting. */
    this.counts = new Map();
    this.running = false;
    this.idleWaiters = [];
    /** Called after each report has been settled. */
    this.reportListeners = new Set();
  }

  /** Ids with a write queued or in progress. */
  get size() {
    return this.counts.size;
  }

  /** Whether a write of `id` is queued or in progress. */
  isPending(id) {
    return this.counts.has(id);
  }

  /**
   * Queues the items; `settle(id, failure, version)` is called once for each, when it is done
   * (stored as `version`, or replaced by a newer write or a delete: `failure` undefined) or has
   * failed (`failure` is `{ code, message }`, plus `version` and `json` for a conflict; an id
   * that cannot name a session fails with `ERR_INVALID_SESSION_ID` at once, without holding
   * up the others).
   */
  queue(items, settle) {
    const { tickets, refused } = this.queueNative(items);
    const refusedAt = new Set(refused.map((f) => f.index));
    let next = 0;
    items.forEach(({ id }, index) => {
      if (refusedAt.has(index)) return;
      this.waiting.set(tickets[next++], [id, settle]);
      this.counts.set(id, (this.counts.get(id) || 0) + 1);
    });
    this._run();
    for (const { index, code, message } of refused) settle(items[index].id, { code, message }, 0);
  }

  /** Resolves once nothing is queued or being written. */
  whenIdle() {
    if (this.counts.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Calls `listener` after each report; returns its removal. */
  onReport(listener) {
    this.reportListeners.add(listener);
    return () => this.reportListeners.delete(listener);
  }

  _run() {
    if (this.running || this.counts.size === 0) return;
    this.running = true;
    this.native.writeQueued().then(
      (report) => this._settleReport(report),
      // The task itself cannot fail; this is Node-API failing to deliver its report.
      (error) => this._settleReport({ tickets: [], failures: [], versions: [] }, error),
    );
  }

  _settleReport({ tickets, failures, versions }, error) {
    const failed = new Map(failures.map((f) => [f.index, f]));
    const thrown = [];
    tickets.forEach((ticket, index) => {
      const f = failed.get(index);
      this._settle(ticket, f && failureOf(f), thrown, versions[index]);
    });
    // A task that took nothing while writes wait would be run again forever, and a lost report
    // leaves its writes unsettled: either way the waiting writes are failed rather than left
    // hanging. A later report of their tickets finds nothing to settle.
    if (tickets.length === 0) {
      const cause = error || new Error('the native write queue is empty');
      const failure = { code: cause.code || 'EIO', message: cause.message };
      for (const ticket of Array.from(this.waiting.keys())) this._settle(ticket, failure, thrown);
    }
    this._next(thrown);
    // Reported only once every write is settled and the next task has started.
    if (thrown.length > 0) throw thrown[0];
  }

  /** Settles one write; a callback that throws (a logger, say) does not stop the others. */
  _settle(ticket, failure, thrown, version = 0) {
    const waiting = this.waiting.get(ticket);
    if (waiting === undefined) return;
    this.waiting.delete(ticket);
    const [id, settle] = waiting;
    const count = this.counts.get(id) - 1;
    if (count === 0) this.counts.delete(id);
    else this.counts.set(id, count);
    try {
      settle(id, failure, version);
    } catch (error) {
      thrown.push(error);
    }
  }

  _next(thrown) {
    this.running = false;
    this._run();
    if (this.counts.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    for (const listener of this.reportListeners) {
      try {
        listener();
      } catch (error) {
        thrown.push(error);
      }
    }
  }
}

/**
 * What every backend over the core's write queue shares: the background writes of the backend
 * contract (`contract.d.ts`).
 */
class QueuedWritesBackend {
  /** @param {ConstructorParameters<typeof BackgroundWrites>} args */
  constructor(...args) {
    this.writes = new BackgroundWrites(...args);
  }

  queueWrites(items, settle) {
    this.writes.queue(items, settle);
  }

  /** Ids with a background write queued or under way. */
  get writesPending() {
    return this.writes.size;
  }

  isWriting(id) {
    return this.writes.isPending(id);
  }

  whenWritten() {
    return this.writes.whenIdle();
  }

  onWritesReported(listener) {
    return this.writes.onReport(listener);
  }
}

/**
 * A failure reported by the core, as the backend contract has it.
 *
 * @param {import('../../index').WriteFailure} failure
 * @returns {import('./contract').WriteFailure}
 */
function failureOf({ code, message, version, json }) {
  return { code, message, version, json };
}

/**
 * One result per item from the failures of a batch, told by position: stored unless it failed
 * (as version 0: a batch written at once reports no versions, and its sessions leave memory).
 *
 * @param {import('./contract').WriteItem[]} items
 * @param {import('../../index').WriteFailure[]} failures
 * @returns {import('./contract').WriteResult[]}
 */
function writeResults(items, failures) {
  /** @type {import('./contract').WriteResult[]} */
  const results = items.map(() => ({ version: 0 }));
  for (const f of failures) results[f.index] = { failure: failureOf(f) };
  return results;
}

module.exports = { BackgroundWrites, QueuedWritesBackend, writeResults };
