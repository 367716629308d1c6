'use strict';

const { SessionDirectory } = require('../index.js');
const { QueuedWritesBackend } = require('./background-writes');
const { splitIdList } = require('./id-list');

/**
 * The backend of the file cache: one directory of `<id>.rhfsession` files, through the native
 * `SessionDirectory`. It implements the interface `CachedStore` documents; every call that
 * touches the disk for long runs in the background.
 */
class DirectoryBackend extends QueuedWritesBackend {
  /**
   * @param {string} path an existing, writable directory
   * @param {{ durable: boolean, maxSessionBytes: number }} settings
   */
  constructor(path, { durable, maxSessionBytes }) {
    const directory = new SessionDirectory(path, durable, maxSessionBytes);
    super(directory);
    this.directory = directory;
  }

  ids(held) {
    return splitIdList(this.directory.idList(held));
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
