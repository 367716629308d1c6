'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { RammerheadSessionFileCache } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const ROOT = path.join(__dirname, '..');

/** Runs a store in another process, as a cluster worker would, and returns what it printed. */
function inOtherProcess(dir, body) {
  const script = `
    const { RammerheadSessionFileCache } = require(${JSON.stringify(ROOT)});
    const sessionClass = require(${JSON.stringify(path.join(ROOT, 'demo', 'hammerhead-session'))});
    const store = new RammerheadSessionFileCache({ saveDirectory: ${JSON.stringify(dir)}, sessionClass, staleCleanupOptions: null });
    ${body}
  `;
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim();
}

test('addSerializedSession is seen by has/get in another process at once, add once written', async () => {
  const dir = h.tempDir();
  const store = new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  expect(store.has('from-worker')).toBe(false);
  const json = fs.readFileSync(
    path.join(h.GOOD, `${h.GOOD_IDS.cookiesAndLocalStorage}.rhfsession`),
    'utf8',
  );
  inOtherProcess(
    dir,
    `store.addSerializedSession('from-worker', ${JSON.stringify(json)}); store.close();`,
  );
  expect(store.has('from-worker')).toBe(true);
  expect(store.get('from-worker').data.localStorage).toEqual(JSON.parse(json).data.localStorage);

  store.add('from-master');
  await store.whenWritten();
  const seen = inOtherProcess(
    dir,
    `console.log(store.has('from-master'), typeof store.get('from-master')); store.close();`,
  );
  expect(seen).toBe('true object');
  store.close();
});
