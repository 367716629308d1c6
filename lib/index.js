'use strict';

const { RammerheadSessionAbstractStore } = require('./abstract-store');
const { RammerheadSessionMemoryStore } = require('./memory-store');
const { RammerheadSessionFileCache } = require('./file-cache');
const { RammerheadSessionRedisStore } = require('./redis-store');

module.exports = {
  RammerheadSessionAbstractStore,
  RammerheadSessionMemoryStore,
  RammerheadSessionFileCache,
  RammerheadSessionRedisStore,
};
