'use strict';

/**
 * The JavaScript side of a directory's native write queue. One background task writes at a
 * time: on a small machine, parallel writers would take the CPU from the JavaScript thread
 * instead of leaving it to requests. Every queued write is settled exactly once, in queue order:
 * the native queue gives each write a ticket, and reports name the writes they settle by ticket,
 * never by id, so no id, however odd, can leave a write unsettled or settle another's.
 */
class BackgroundWrites {
  /**
   * @param {import('../index').FileSessions} directory
   * @param {() => void} onReport called after each task's report has been settled
   */
  constructor(directory, onReport) {
    this.directory = directory;
    this.onReport = onReport;
    /** ticket -> [id, settle] of every queued write not yet settled, oldest first. */
    this.waiting = new Map();
    /** id -> how many of its writes are waiting. */
    this.counts = new Map();
    this.running = false;
    this.idleWaiters = [];
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
   * Queues `contents[i]` as the file of `ids[i]`. `settle(id, failure, version)` is called once
   * the write is done (written, or replaced by a newer write or a delete: `failure` undefined)
   * or has failed (`failure` is `{ id, code, message }`, plus `version` and `stored` for a
   * conflict; an id that cannot name a file fails with `ERR_INVALID_SESSION_ID` at once,
   * without holding up the others). `version` is the version stored, for backends that keep
   * versions. `more` are further arguments of the native `queueWrites`.
   */
  queue(ids, contents, settle, ...more) {
    const { tickets, refused } = this.directory.queueWrites(ids, contents, ...more);
    const refusedAt = new Set(refused.map((f) => f.index));
    let next = 0;
    ids.forEach((id, index) => {
      if (refusedAt.has(index)) return;
      this.waiting.set(tickets[next++], [id, settle]);
      this.counts.set(id, (this.counts.get(id) || 0) + 1);
    });
    this._run();
    for (const { index, code, message } of refused) {
      settle(ids[index], { id: ids[index], code, message });
    }
  }

  /** Resolves once nothing is queued or being written. */
  whenIdle() {
    if (this.counts.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  _run() {
    if (this.running || this.counts.size === 0) return;
    this.running = true;
    this.directory.writeQueued().then(
      (report) => this._settleReport(report),
      // The task itself cannot fail; this is Node-API failing to deliver its report.
      (error) => this._settleReport({ tickets: [], failures: [] }, error),
    );
  }

  _settleReport({ tickets, failures, versions }, error) {
    const failed = new Map(failures.map((f) => [f.index, f]));
    const thrown = [];
    tickets.forEach((ticket, index) => {
      const f = failed.get(index);
      const failure = f && {
        code: f.code,
        message: f.message,
        version: f.version,
        json: f.json,
      };
      this._settle(ticket, failure, thrown, versions && versions[index]);
    });
    // A task that took nothing while writes wait would be run again forever, and a lost report
    // leaves its writes unsettled: either way the waiting writes are failed rather than left
    // hanging. A later report of their tickets finds nothing to settle.
    if (tickets.length === 0) {
      const cause = error || new Error('the native write queue is empty');
      const failure = { code: cause.code || 'EIO', message: cause.message };
      for (const ticket of Array.from(this.waiting.keys())) this._settle(ticket, failure, thrown);
    }
    this._next();
    // Reported only once every write is settled and the next task has started.
    if (thrown.length > 0) throw thrown[0];
  }

  /** Settles one write; a callback that throws (a logger, say) does not stop the others. */
  _settle(ticket, failure, thrown, version) {
    const item = this.waiting.get(ticket);
    if (item === undefined) return;
    this.waiting.delete(ticket);
    const [id, settle] = item;
    const count = this.counts.get(id) - 1;
    if (count === 0) this.counts.delete(id);
    else this.counts.set(id, count);
    try {
      settle(id, failure && { id, ...failure }, version);
    } catch (error) {
      thrown.push(error);
    }
  }

  _next() {
    this.running = false;
    this._run();
    if (this.counts.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    this.onReport();
  }
}

/**
 * What every backend with a native write queue shares: the background writes of the interface
 * `CachedStore` documents, over `native` (which has `queueWrites` and `writeQueued`).
 */
class QueuedWritesBackend {
  constructor(native) {
    /** Called after each report of background writes has been settled. */
    this.onWritesReported = () => {};
    this.writes = new BackgroundWrites(native, () => this.onWritesReported());
  }

  queueWrites(ids, contents, settle) {
    this.writes.queue(ids, contents, settle);
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
}

module.exports = { BackgroundWrites, QueuedWritesBackend };
