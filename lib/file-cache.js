'use strict';

const { CachedStore } = require('./cached-store');
const { DirectoryBackend } = require('./directory-backend');
const options = require('./options');
const { resolveSessionClass, defaultSaveDirectory } = require('./session-class');

/** Far above real sessions (cookies and synced localStorage); a guard against hostile files. */
const DEFAULT_MAX_SESSION_BYTES = 64 * 1024 * 1024;

function staleCleanup(value) {
  const defaults = { staleTimeout: 1000 * 60 * 60 * 24, maxToLive: 1000 * 60 * 60 * 24 * 4 };
  const interval = (v) =>
    options.interval('staleCleanupOptions.staleCheckInterval', v, 1000 * 60 * 60);
  if (value === null) return null;
  if (value === undefined) return { ...defaults, staleCheckInterval: interval(undefined) };
  if (typeof value !== 'object') {
    throw new TypeError('option staleCleanupOptions must be an object or null');
  }
  // As in the original, a limit left out of a given object is disabled.
  return {
    staleTimeout: options.limit('staleCleanupOptions.staleTimeout', value.staleTimeout, null),
    maxToLive: options.limit('staleCleanupOptions.maxToLive', value.maxToLive, null),
    staleCheckInterval: interval(value.staleCheckInterval),
  };
}

/** The options of the file cache, validated, with the original's defaults. */
function settingsOf(opts) {
  const o = options.readOptions(opts, 'RammerheadSessionFileCache');
  const settings = {
    logger: options.logger(o.logger),
    cacheTimeout: options.interval('cacheTimeout', o.cacheTimeout, 1000 * 60 * 20),
    cacheCheckInterval: options.interval(
      'cacheCheckInterval',
      o.cacheCheckInterval,
      1000 * 60 * 10,
    ),
    deleteUnused: options.boolean('deleteUnused', o.deleteUnused, true),
    deleteCorruptedSessions: options.boolean(
      'deleteCorruptedSessions',
      o.deleteCorruptedSessions,
      true,
    ),
    durable: options.boolean('durable', o.durable, false),
    maxSessionBytes: options.byteCount(
      'maxSessionBytes',
      o.maxSessionBytes,
      DEFAULT_MAX_SESSION_BYTES,
    ),
    staleCleanupOptions: staleCleanup(o.staleCleanupOptions),
    sessionClass: resolveSessionClass(options.sessionClass(o.sessionClass)),
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
    super('FileCache', settings, new DirectoryBackend(settings.saveDirectory, settings));
    this.saveDirectory = settings.saveDirectory;
    this.durable = settings.durable;
    this.maxSessionBytes = settings.maxSessionBytes;
  }
}

module.exports = { RammerheadSessionFileCache };
