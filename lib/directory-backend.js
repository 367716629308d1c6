'use strict';

const { SessionDirectory } = require('../index.js');
const { BackgroundWrites } = require('./background-writes');

/**
 * The backend of the file cache: one directory of `<id>.rhfsession` files, through the native
 * `SessionDirectory`. It implements the interface `CachedStore` documents; every call that
 * touches the disk for long runs in the background.
 */
class DirectoryBackend {
  /**
   * @param {string} path an existing, writable directory
   * @param {{ durable: boolean, maxSessionBytes: number }} settings
   */
  constructor(path, { durable, maxSessionBytes }) {
    this.directory = new SessionDirectory(path, durable, maxSessionBytes);
    /** Called after each report of background writes has been settled. */
    this.onWritesReported = () => {};
    this.writes = new BackgroundWrites(this.directory, () => this.onWritesReported());
  }

  ids() {
    return this.directory.ids();
  }

  load(id) {
    return this.directory.load(id);
  }

  rejectLoaded(id) {
    this.directory.rejectLoaded(id);
  }

  removeCorrupt(id) {
    return this.directory.removeCorrupt(id);
  }

  saveNow(id, json) {
    this.directory.import(id, json, false);
  }

  saveAllNow(ids, contents) {
    return this.directory.writeNow(ids, contents);
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

  remove(id) {
    return this.directory.remove(id);
  }

  removeLater(ids) {
    return this.directory.removeLater(ids);
  }

  release(ids) {
    if (ids.length > 0) this.directory.release(ids);
  }

  sweep(now, staleTimeout, maxToLive, removeCorrupt) {
    return this.directory.sweep(now, staleTimeout, maxToLive, removeCorrupt);
  }
}

module.exports = { DirectoryBackend };
