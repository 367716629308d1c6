'use strict';

const { RammerheadSessionAbstractStore } = require('./abstract-store');
const { RammerheadSessionMemoryStore } = require('./memory-store');
const { RammerheadSessionFileCache } = require('./file-cache');

module.exports = {
  RammerheadSessionAbstractStore,
  RammerheadSessionMemoryStore,
  RammerheadSessionFileCache,
};
