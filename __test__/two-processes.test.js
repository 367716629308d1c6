'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { RammerheadSessionFileCache } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const PROCESS = path.join(__dirname, 'support', 'store-process.js');

/** A store in another process, as a cluster worker holds one; its calls answer as promises. */
function otherProcess(dir) {
  const child = spawn(process.execPath, [PROCESS, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  readline
    .createInterface({ input: child.stdout })
    .on('line', (line) => waiting.shift()(JSON.parse(line)));
  return {
    call(name, ...args) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write(`${JSON.stringify({ call: name, args })}\n`);
      });
    },
    stop: () => child.kill('SIGKILL'),
  };
}

test('a session stored in one process is seen by another while both run', async () => {
  const dir = h.tempDir();
  const store = new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  const worker = otherProcess(dir);
  try {
    // addSerializedSession has stored the session once it returns: no close(), no exit needed.
    const json = fs.readFileSync(
      path.join(h.GOOD, `${h.GOOD_IDS.cookiesAndLocalStorage}.rhfsession`),
      'utf8',
    );
    expect(await worker.call('addSerializedSession', 'from-worker', json)).toEqual({ ok: null });
    expect(store.has('from-worker')).toBe(true);
    expect(store.get('from-worker').data.localStorage).toEqual(JSON.parse(json).data.localStorage);

    // add() writes in the background: once whenWritten() resolves, the file is there.
    store.add('from-master');
    await store.whenWritten();
    expect(fs.existsSync(path.join(dir, 'from-master.rhfsession'))).toBe(true);
    expect(await worker.call('has', 'from-master')).toEqual({ ok: true });
    expect((await worker.call('get', 'from-master')).ok.id).toBe('from-master');

    // A delete in one process removes the file for all of them.
    expect(await worker.call('delete', 'from-master')).toEqual({ ok: true });
    expect(fs.existsSync(path.join(dir, 'from-master.rhfsession'))).toBe(false);
  } finally {
    worker.stop();
    store.close();
  }
});
