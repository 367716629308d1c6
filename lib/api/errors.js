// @ts-check
'use strict';

// The errors every store throws, as the original's do: a TypeError for an argument of the wrong
// type, and for everything else an Error whose `code` says why, as the core's errors have.

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

/**
 * An Error with its `code`, and any further `properties`.
 *
 * @template {object} P
 * @param {string} message
 * @param {string} code
 * @param {P} [properties]
 * @returns {Error & { code: string } & P}
 */
function codedError(message, code, properties) {
  return Object.assign(new Error(message), { code }, properties);
}

module.exports = { describe, requireString, codedError };
