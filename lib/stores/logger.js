// @ts-check
'use strict';

/**
 * The default logger: silent. The original's default, `RammerheadLogging({ logLevel: 'disabled' })`,
 * prints every debug line because of a level-ranking slip; a disabled logger should print nothing.
 */
const noop = () => {};
const silentLogger = Object.freeze({
  traffic: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
});

module.exports = { silentLogger };
