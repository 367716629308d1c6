// @ts-check
'use strict';

const { describe } = require('../api/errors');
const { silentLogger } = require('./logger');
const { resolveSessionClass } = require('./session-class');

/** setTimeout and setInterval turn longer delays into 1 ms. */
const MAX_INTERVAL = 2 ** 31 - 1;

function optionError(name, rule, value) {
  return new TypeError(`option ${name} must be ${rule}, got ${describe(value)}`);
}

function readOptions(options, storeName) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${storeName} options must be an object, got ${describe(options)}`);
  }
  return options;
}

/** How often a timer fires: a positive number of milliseconds a timer can hold. */
function interval(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0) || value > MAX_INTERVAL) {
    throw optionError(name, `a number of milliseconds above 0 and at most ${MAX_INTERVAL}`, value);
  }
  return value;
}

/** An age limit in milliseconds; null (or 0, as in the original) disables it. */
function limit(name, value, fallback) {
  if (value === undefined) return fallback;
  if (value === null) return null;
  if (typeof value !== 'number' || !(value >= 0) || value === Infinity) {
    throw optionError(name, 'a number of milliseconds, 0 or more, or null to disable it', value);
  }
  return value;
}

/** A size in bytes: a positive integer. */
function byteCount(name, value, fallback) {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw optionError(name, 'a whole number of bytes above 0', value);
  }
  return value;
}

function boolean(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw optionError(name, 'true or false', value);
  return value;
}

/**
 * A yes-or-no environment variable, for what operators who only change rammerhead's require
 * line set: `1` or `true`, `0`, `false` or unset; anything else throws a TypeError naming it.
 */
function environmentFlag(name) {
  const value = process.env[name];
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new TypeError(`environment variable ${name} must be 1, true, 0 or false, got ${value}`);
}

function string(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '')
    throw optionError(name, 'a non-empty string', value);
  return value;
}

/** PEM certificates, as text or the bytes of a file; undefined when not given. */
function certificates(name, value) {
  if (value === undefined || value === null) return undefined;
  const text = Buffer.isBuffer(value) ? value.toString('latin1') : value;
  if (typeof text !== 'string' || !text.includes('-----BEGIN CERTIFICATE-----')) {
    throw optionError(name, 'PEM certificates (a string or Buffer)', value);
  }
  return text;
}

const LOGGER_METHODS = ['debug', 'info', 'warn', 'error'];

function logger(value) {
  if (value === undefined || value === null) return silentLogger;
  if (typeof value !== 'object' || LOGGER_METHODS.some((m) => typeof value[m] !== 'function')) {
    throw optionError('logger', `an object with methods ${LOGGER_METHODS.join(', ')}`, value);
  }
  return value;
}

function sessionClass(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'function' || typeof value.DeserializeSession !== 'function') {
    throw optionError(
      'sessionClass',
      'a class with a static DeserializeSession(id, json), like RammerheadSession',
      value,
    );
  }
  return value;
}

/** Used when the `compression` option is absent (see the README). */
const COMPRESSION_VARIABLE = 'RAMMERHEAD_SESSION_COMPRESSION';
/** Used when the `encryptionKeys` option is absent: base64 keys separated by commas. */
const KEYS_VARIABLE = 'RAMMERHEAD_SESSION_KEYS';
const COMPRESSIONS = ['zstd', 'none'];
/** 32 bytes in base64, standard or URL-safe, padded or not. */
const KEY_PATTERN = /^[A-Za-z0-9+/_-]{43}=?$/;

function compression(value) {
  if (value === undefined) {
    const variable = process.env[COMPRESSION_VARIABLE];
    if (variable === undefined || variable === '') return 'none';
    if (!COMPRESSIONS.includes(variable)) {
      throw new TypeError(
        `environment variable ${COMPRESSION_VARIABLE} must be zstd or none, got ${variable}`,
      );
    }
    return variable;
  }
  if (value === null) return 'none';
  if (!COMPRESSIONS.includes(value)) {
    throw optionError('compression', "'zstd' or 'none'", value);
  }
  return value;
}

/**
 * Encryption keys as bytes. Messages say which key is wrong and how, never what it is: an
 * operator's log must not hold the key that opens every session.
 *
 * @param {Array<string | Buffer>} texts
 * @param {string} from
 */
function keyBytes(texts, from) {
  return texts.map((text, index) => {
    const key = typeof text === 'string' ? text.trim() : text;
    if (Buffer.isBuffer(key) && key.length === 32) return key;
    if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
      const what =
        typeof key === 'string'
          ? `${key.length} characters`
          : Buffer.isBuffer(key)
            ? `${key.length} bytes`
            : typeof key;
      throw new TypeError(
        `${from}: key ${index + 1} must be 32 bytes in base64 (44 characters, such as the output of \`openssl rand -base64 32\`), got ${what}`,
      );
    }
    return Buffer.from(key, 'base64');
  });
}

function encryptionKeys(value) {
  if (value === undefined) {
    const variable = process.env[KEYS_VARIABLE];
    if (variable === undefined || variable.trim() === '') return [];
    return keyBytes(variable.split(','), `environment variable ${KEYS_VARIABLE}`);
  }
  if (value === null) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(
      `option encryptionKeys must be an array of keys (base64 of 32 bytes each), got ${typeof value}`,
    );
  }
  return keyBytes(value, 'option encryptionKeys');
}

/**
 * How a store writes sessions: compressed, encrypted (with the first key), both or neither; the
 * values of every codec are read. The options win over the environment variables.
 */
function codecSettings(o) {
  return { compression: compression(o.compression), keys: encryptionKeys(o.encryptionKeys) };
}

/** The name of what a store with this codec writes, as `verify` reports values. */
function encodingName({ compression: c, keys }) {
  const parts = [...(c === 'zstd' ? ['zstd'] : []), ...(keys.length ? ['aes-256-gcm'] : [])];
  return parts.length ? parts.join('+') : 'plain';
}

/** Far above real sessions (cookies and synced localStorage); a guard against hostile data. */
const DEFAULT_MAX_SESSION_BYTES = 64 * 1024 * 1024;

function staleCleanup(value) {
  const defaults = { staleTimeout: 1000 * 60 * 60 * 24, maxToLive: 1000 * 60 * 60 * 24 * 4 };
  const every = (v) => interval('staleCleanupOptions.staleCheckInterval', v, 1000 * 60 * 60);
  if (value === null) return null;
  if (value === undefined) return { ...defaults, staleCheckInterval: every(undefined) };
  if (typeof value !== 'object') {
    throw new TypeError('option staleCleanupOptions must be an object or null');
  }
  // As in the original, a limit left out of a given object is disabled.
  return {
    staleTimeout: limit('staleCleanupOptions.staleTimeout', value.staleTimeout, null),
    maxToLive: limit('staleCleanupOptions.maxToLive', value.maxToLive, null),
    staleCheckInterval: every(value.staleCheckInterval),
  };
}

/** The options every store with a cache layer takes, validated, with the original's defaults. */
function cachedStoreSettings(o) {
  const codec = codecSettings(o);
  return {
    logger: logger(o.logger),
    cacheTimeout: interval('cacheTimeout', o.cacheTimeout, 1000 * 60 * 20),
    cacheCheckInterval: interval('cacheCheckInterval', o.cacheCheckInterval, 1000 * 60 * 10),
    deleteUnused: boolean('deleteUnused', o.deleteUnused, true),
    // With encryption keys, a damaged encrypted value cannot be told from other damage, and a
    // wrong key must never cost a session: nothing is deleted as corrupt.
    deleteCorruptedSessions:
      boolean('deleteCorruptedSessions', o.deleteCorruptedSessions, true) &&
      codec.keys.length === 0,
    codec,
    encoding: encodingName(codec),
    maxSessionBytes: byteCount('maxSessionBytes', o.maxSessionBytes, DEFAULT_MAX_SESSION_BYTES),
    staleCleanupOptions: staleCleanup(o.staleCleanupOptions),
    sessionClass: resolveSessionClass(sessionClass(o.sessionClass)),
  };
}

module.exports = {
  DEFAULT_MAX_SESSION_BYTES,
  COMPRESSION_VARIABLE,
  KEYS_VARIABLE,
  codecSettings,
  cachedStoreSettings,
  readOptions,
  interval,
  limit,
  byteCount,
  boolean,
  environmentFlag,
  string,
  certificates,
  logger,
  sessionClass,
};
