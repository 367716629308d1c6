'use strict';

// Runs under a file-size limit too small for one of its sessions. Reports each step as a JSON
// line on stdout and waits for "go" on stdin before retrying. Run as: node write-under-limit.js DIR
const fs = require('fs');
const readline = require('readline');
const { RammerheadSessionFileCache } = require('../..');
const HammerheadSession = require('../../demo/hammerhead-session');

const errors = [];
const logger = { debug() {}, info() {}, warn() {}, error: (line) => errors.push(line) };
const store = new RammerheadSessionFileCache({
  saveDirectory: process.argv[2],
  sessionClass: HammerheadSession,
  staleCleanupOptions: null,
  cacheTimeout: 1,
  cacheCheckInterval: 2 ** 31 - 1,
  logger,
});

function say(event) {
  fs.writeSync(1, `${JSON.stringify(event)}\n`);
}

function makeIdle(id, payload) {
  const session = store.get(id) || store.add(id);
  session.data.payload = payload;
  session.lastUsed = Date.now() - 1000;
  return session;
}

async function main() {
  const big = makeIdle('big', 'b'.repeat(512 * 1024));
  makeIdle('small', 'small');
  // The fresh sessions' own files first, so "big" has a complete older version on disk.
  await store.whenWritten();
  await store.checkCache();
  let closeError;
  try {
    store.close();
  } catch (error) {
    closeError = { code: error.code, ids: error.failures.map((f) => f.id), message: error.message };
  }
  say({
    step: 'limited',
    errors,
    closeError,
    bigInMemory: store.cachedSessions.get('big') === big,
    smallInMemory: store.cachedSessions.has('small'),
  });
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line !== 'go') continue;
    await store.checkCache();
    say({ step: 'retried', bigInMemory: store.cachedSessions.has('big') });
    store.close();
    say({ step: 'closed' });
    process.exit(0);
  }
}

main();
