'use strict';

// The argument checks every store shares.

/** A value as an error message shows it. */
function describe(value) {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}

/** Throws the TypeError the original's string handling gives for a non-string id. */
function requireString(value, name) {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, got ${describe(value)}`);
  }
}

module.exports = { describe, requireString };
