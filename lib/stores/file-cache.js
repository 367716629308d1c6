// @ts-check
'use strict';

const { DirectoryBackend } = require('../backends/directory-backend');
const { CachedStore } = require('../cache/cached-store');
const { unversionedCopies } = require('../cache/copies');
const options = require('./options');
const { defaultSaveDirectory } = require('./session-class');

/** The options of the file cache, validated, with the original's defaults. */
function settingsOf(opts) {
  const o = options.readOptions(opts, 'RammerheadSessionFileCache');
  const settings = {
    ...options.cachedStoreSettings(o),
    durable: options.boolean('durable', o.durable, false),
    saveDirectory: options.string('saveDirectory', o.saveDirectory, undefined),
  };
  if (settings.saveDirectory === undefined) settings.saveDirectory = defaultSaveDirectory();
  return settings;
}

/**
 * Sessions in memory while in use and in `<id>.rhfsession` files otherwise. Files are replaced
 * atomically; writes and stale cleanup run off the JavaScript thread.
 */
class RammerheadSessionFileCache extends CachedStore {
  constructor(opts) {
    const settings = settingsOf(opts);
    const backend = new DirectoryBackend(settings.saveDirectory, settings);
    super('FileCache', settings, backend, unversionedCopies);
    this.saveDirectory = settings.saveDirectory;
    this.durable = settings.durable;
  }
}

module.exports = { RammerheadSessionFileCache };
