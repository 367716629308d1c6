// @ts-check
'use strict';

const { RammerheadSessionAbstractStore } = require('./api/abstract-store');
const { RammerheadSessionMemoryStore } = require('./stores/memory-store');
const { RammerheadSessionFileCache } = require('./stores/file-cache');
const { RammerheadSessionRedisStore } = require('./stores/redis-store');

module.exports = {
  RammerheadSessionAbstractStore,
  RammerheadSessionMemoryStore,
  RammerheadSessionFileCache,
  RammerheadSessionRedisStore,
};
