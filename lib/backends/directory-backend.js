// @ts-check
'use strict';

const { FileSessions } = require('../../index.js');
const { QueuedWritesBackend, writeResults } = require('./background-writes');
const { splitIdList } = require('./id-list');

/** @typedef {import('./contract').SessionBackend} SessionBackend */

/**
 * One directory of `<id>.rhfsession` files, through the core's `FileSessions`; every call that
 * touches the disk for long runs in the background. Files keep no versions.
 *
 * @implements {SessionBackend}
 */
class DirectoryBackend extends QueuedWritesBackend {
  /**
   * @param {string} path an existing, writable directory
   * @param {{ durable: boolean, maxSessionBytes: number,
   *   codec?: { compression: string, keys: Buffer[] } }} settings
   */
  constructor(path, { durable, maxSessionBytes, codec }) {
    const files = new FileSessions(path, durable, maxSessionBytes, codec);
    super(files, (items) =>
      files.queueWrites(
        items.map((item) => item.id),
        items.map((item) => item.json),
      ),
    );
    this.files = files;
  }

  ids(held) {
    return splitIdList(this.files.idList(held));
  }

  load(id) {
    return this.files.load(id);
  }

  loadLater(id) {
    return this.files.loadLater(id);
  }

  rejectLoaded(id) {
    this.files.rejectLoaded(id);
  }

  /** The core remembers the version of the file it found corrupt, or rejected after loading. */
  removeCorrupt(id) {
    return this.files.removeCorrupt(id);
  }

  import(id, json) {
    return this.files.import(id, json);
  }

  checkImport(id, json) {
    this.files.checkImport(id, json);
  }

  writeNow(items) {
    const failures = this.files.writeNow(
      items.map((item) => item.id),
      items.map((item) => item.json),
    );
    return writeResults(items, failures);
  }

  remove(id) {
    return this.files.remove(id);
  }

  removeLater(ids) {
    return this.files.removeLater(ids);
  }

  release(ids) {
    if (ids.length > 0) this.files.release(ids);
  }

  sweep(now, { staleTimeout, maxToLive }, removeCorrupt) {
    return this.files.sweep(now, staleTimeout, maxToLive, removeCorrupt);
  }

  stats() {
    return {};
  }

  close() {}
}

module.exports = { DirectoryBackend };
