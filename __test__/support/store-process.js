'use strict';

// A FileCache in a process of its own, as a cluster worker would hold it. Reads one JSON call
// per line on stdin ({ "call": "has", "args": ["id"] }) and answers each with one JSON line:
// { "ok": result } (a session as { id, data }) or { "error": { name, code, message } }.
// Run as: node store-process.js DIR
const readline = require('readline');
const { RammerheadSessionFileCache } = require('../..');
const HammerheadSession = require('../../demo/hammerhead-session');

const store = new RammerheadSessionFileCache({
  saveDirectory: process.argv[2],
  sessionClass: HammerheadSession,
  staleCleanupOptions: null,
});

function plain(value) {
  if (value instanceof HammerheadSession) return { id: value.id, data: value.data };
  return value === undefined ? null : value;
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { call, args } = JSON.parse(line);
  let answer;
  try {
    answer = { ok: plain(await store[call](...args)) };
  } catch (error) {
    answer = { error: { name: error.name, code: error.code, message: error.message } };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
});
