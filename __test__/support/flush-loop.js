'use strict';

// Flushes large sessions in rounds, forever, announcing each completed round on stdout.
// Even rounds flush through close() (synchronous writes), odd ones through checkCache()
// (background writes). Run as: node flush-loop.js DIR FIRST_ROUND
const fs = require('fs');
const { RammerheadSessionFileCache } = require('../..');
const HammerheadSession = require('../../demo/hammerhead-session');

const [dir, firstRound] = [process.argv[2], Number(process.argv[3])];
const SESSIONS = 12;
const PAYLOAD = 'x'.repeat(256 * 1024);

function open() {
  return new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    deleteUnused: false,
    cacheTimeout: 1,
    cacheCheckInterval: 2 ** 31 - 1,
  });
}

function say(line) {
  fs.writeSync(1, `${line}\n`);
}

async function main() {
  let store = open();
  const ids = Array.from({ length: SESSIONS }, (_, i) => `session${i}`);
  for (let round = firstRound; ; round++) {
    for (const id of ids) {
      const session = store.get(id) || store.add(id);
      session.data.round = round;
      session.data.payload = `${round}:${PAYLOAD}`;
      session.lastUsed = Date.now() - 1000;
    }
    if (round % 2 === 0) {
      store.close();
      store = open();
    } else {
      await store.checkCache();
    }
    say(`flushed ${round}`);
  }
}

say('ready');
main();
