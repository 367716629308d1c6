'use strict';

const { FileSessions } = require('../index.js');
const { QueuedWritesBackend } = require('./background-writes');
const { splitIdList } = require('./id-list');

/**
 * The backend of the file cache: one directory of `<id>.rhfsession` files, through the native
 * `FileSessions`. It implements the interface `CachedStore` documents; every call that
 * touches the disk for long runs in the background.
 */
class DirectoryBackend extends QueuedWritesBackend {
  /**
   * @param {string} path an existing, writable directory
   * @param {{ durable: boolean, maxSessionBytes: number }} settings
   */
  constructor(path, { durable, maxSessionBytes }) {
    const directory = new FileSessions(path, durable, maxSessionBytes);
    super(directory);
    this.directory = directory;
  }

  ids(held) {
    return splitIdList(this.directory.idList(held));
  }

  load(id) {
    const copy = this.directory.load(id);
    return copy === null ? null : copy.json;
  }

  rejectLoaded(id) {
    this.directory.rejectLoaded(id);
  }

  removeCorrupt(id) {
    return this.directory.removeCorrupt(id);
  }

  saveNow(id, json) {
    this.directory.import(id, json);
  }

  saveAllNow(ids, contents) {
    return this.directory.writeNow(ids, contents);
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
