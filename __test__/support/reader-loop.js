'use strict';

// Reads sessions u0…u{count-1} again and again for `ms` milliseconds, each round through a new
// store that then closes (as a restarted cluster worker would), and also with plain
// fs.readFileSync (as a backup job would). Prints one JSON line of what it saw.
// Run as: node reader-loop.js DIR COUNT MS
const fs = require('fs');
const path = require('path');
const { RammerheadSessionFileCache } = require('../..');
const HammerheadSession = require('../../demo/hammerhead-session');

const [dir, count, ms] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const ids = Array.from({ length: count }, (_, i) => `u${i}`);
const seen = {
  rounds: 0,
  reads: 0,
  foreign: 0,
  missing: 0,
  plainReads: 0,
  plainForeign: 0,
  plainBad: 0,
  warnings: [],
};
const logger = {
  debug() {},
  info() {},
  warn: (line) => seen.warnings.push(line),
  error: (line) => seen.warnings.push(line),
};

const end = Date.now() + ms;
while (Date.now() < end) {
  const store = new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    logger,
  });
  for (const id of ids) {
    const session = store.get(id);
    seen.reads++;
    if (session === undefined) seen.missing++;
    else if (session.data.owner !== id) seen.foreign++;
    let owner;
    try {
      owner = JSON.parse(fs.readFileSync(path.join(dir, `${id}.rhfsession`), 'utf8')).data.owner;
    } catch {
      seen.plainBad++;
      continue;
    }
    seen.plainReads++;
    if (owner !== id) seen.plainForeign++;
  }
  store.close();
  seen.rounds++;
}
seen.warnings = seen.warnings.slice(0, 5);
process.stdout.write(`${JSON.stringify(seen)}\n`);
