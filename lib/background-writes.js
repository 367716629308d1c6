'use strict';

/**
 * The JavaScript side of a directory's native write queue. One background task writes at a
 * time: on a small machine, parallel writers would take the CPU from the JavaScript thread
 * instead of leaving it to requests. Every queued write is settled exactly once, in queue order.
 */
class BackgroundWrites {
  /**
   * @param {import('../index').SessionDirectory} directory
   * @param {() => void} onReport called after each task's report has been settled
   */
  constructor(directory, onReport) {
    this.directory = directory;
    this.onReport = onReport;
    /** id -> settle callbacks of its queued writes, oldest first. */
    this.pending = new Map();
    this.running = false;
    this.idleWaiters = [];
  }

  /** Ids with a write queued or in progress. */
  get size() {
    return this.pending.size;
  }

  /**
   * Queues `contents[i]` as the file of `ids[i]` (valid ids only: a bad one throws a TypeError
   * and queues nothing). `settle(id, failure)` is called once the write is done (written, or
   * replaced by a newer write or a delete: `failure` undefined) or has failed (`failure` is
   * `{ id, code, message }`).
   */
  queue(ids, contents, settle) {
    this.directory.queueWrites(ids, contents);
    for (const id of ids) {
      const callbacks = this.pending.get(id);
      if (callbacks === undefined) this.pending.set(id, [settle]);
      else callbacks.push(settle);
    }
    this._run();
  }

  /** Resolves once nothing is queued or being written. */
  whenIdle() {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  _run() {
    if (this.running || this.pending.size === 0) return;
    this.running = true;
    this.directory.writeQueued().then(
      (report) => this._settleReport(report),
      // The task itself cannot fail; this is Node-API failing to deliver its report.
      (error) => this._failAll(error),
    );
  }

  _settleReport({ done, failures }) {
    try {
      // An id in both lists was done first: only its newest write can fail.
      for (const id of done) this._settle(id, undefined);
      for (const failure of failures) this._settle(failure.id, failure);
    } finally {
      // Even if a callback threw (a logger, say), later writes must still run.
      this._next();
    }
  }

  _failAll(error) {
    const pending = this.pending;
    this.pending = new Map();
    const code = error.code || 'EIO';
    for (const [id, callbacks] of pending) {
      for (const settle of callbacks) settle(id, { id, code, message: error.message });
    }
    this._next();
  }

  _settle(id, failure) {
    const callbacks = this.pending.get(id);
    if (callbacks === undefined) return;
    const settle = callbacks.shift();
    if (callbacks.length === 0) this.pending.delete(id);
    settle(id, failure);
  }

  _next() {
    this.running = false;
    this._run();
    if (this.pending.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    this.onReport();
  }
}

module.exports = { BackgroundWrites };
