'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ROOT = path.join(__dirname, '..');

/** The fsync-family calls a process makes while it stores one session and closes. */
function syncCalls(durable) {
  const dir = h.tempDir();
  const trace = path.join(h.tempDir(), 'trace');
  const script = `
    const { RammerheadSessionFileCache } = require(${JSON.stringify(ROOT)});
    const sessionClass = require(${JSON.stringify(path.join(ROOT, 'demo', 'hammerhead-session'))});
    const store = new RammerheadSessionFileCache({ saveDirectory: ${JSON.stringify(dir)}, sessionClass, staleCleanupOptions: null, durable: ${durable} });
    store.addSerializedSession('a', new sessionClass({ id: 'a' }).serializeSession());
    store.close();
  `;
  execFileSync('strace', [
    '-f',
    '-qq',
    '-e',
    'trace=fsync,fdatasync,syncfs',
    '-o',
    trace,
    process.execPath,
    '-e',
    script,
  ]);
  return fs
    .readFileSync(trace, 'utf8')
    .split('\n')
    .filter((line) => /sync/.test(line));
}

test('durable writes fsync the file and the directory; the default does not', () => {
  expect(syncCalls(false)).toEqual([]);
  // One write: the new file before it takes the session's name, the directory after.
  expect(syncCalls(true).length).toBeGreaterThanOrEqual(2);
});
