'use strict';

// A cache check, a stale cleanup and the store's own calls interleave across turns of the event
// loop; none may lose a session, bring one back, or keep running after it has ended.

const fs = require('fs');
const path = require('path');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');
const { CacheCheck } = require('../lib/cache/cache-check');
const { Cause } = require('../lib/cache/held-sessions');

const MINUTE = 60 * 1000;
const start = Date.now();
/** The clock every store and session reads, set to `start + ms`. */
function setClock(ms) {
  jest.spyOn(Date, 'now').mockImplementation(() => start + ms);
}

afterEach(() => jest.restoreAllMocks());

function serialized(id) {
  return new HammerheadSession({ id }).serializeSession();
}

test('close() during a cache check keeps a session it could not save, and saves it later', async () => {
  setClock(0);
  const dir = h.tempDir();
  const store = h.openFileCache(dir, { cacheTimeout: MINUTE, logger: h.recordingLogger() });
  // Sessions ahead of the victim keep its queued write from starting before close().
  for (let i = 0; i < 300; i++) store.get(store.add(`s${i}`).id);
  const victim = store.get(store.add('victim').id);
  await store.whenWritten();
  victim.data.secret = 'newest cookies';
  const file = path.join(dir, 'victim.rhfsession');
  fs.rmSync(file);
  fs.mkdirSync(file); // nothing can take the session file's place now
  setClock(2 * MINUTE);
  const check = store.checkCache();
  while (!store.sessions.get('victim').leaving) await new Promise(setImmediate);
  expect(() => store.close()).toThrow(
    expect.objectContaining({ code: 'ERR_SESSIONS_NOT_SAVED', failures: [expect.anything()] }),
  );
  await check;
  await store.whenWritten();
  expect(store.sessions.get('victim').session).toBe(victim);
  fs.rmdirSync(file);
  store.close();
  expect(JSON.parse(fs.readFileSync(file, 'utf8')).data.secret).toBe('newest cookies');
});

test('a session stored under an id that just expired is not deleted with the old one', async () => {
  setClock(0);
  const dir = h.tempDir();
  const logger = h.recordingLogger();
  const store = h.openFileCache(dir, { logger });
  for (let i = 0; i < 300; i++) store.get(store.add(`s${i}`).id);
  await store.whenWritten();
  store.staleCleanupOptions = { staleTimeout: MINUTE, maxToLive: null, staleCheckInterval: 1e9 };
  setClock(2 * MINUTE);
  // Each deletion is slow, so the cleanup takes several slices; between the first two, s0 is
  // stored anew.
  let imported = false;
  logger.debug = (message) => {
    const until = performance.now() + 0.1;
    while (performance.now() < until);
    if (!imported && / s0 leaves memory: expired$/.test(message)) {
      imported = true;
      setImmediate(() => store.addSerializedSession('s0', serialized('s0')));
    }
  };
  await store.removeStaleSessions();
  await store.whenWritten();
  expect(imported).toBe(true);
  expect(h.listed(dir)).toEqual(['s0.rhfsession']);
  expect(store.get('s0').id).toBe('s0');
  store.close();
});

test('an expired session that a cache check is writing out is deleted by the cleanup', async () => {
  setClock(0);
  const dir = h.tempDir();
  const store = h.openFileCache(dir, { cacheTimeout: MINUTE });
  store.get(store.add('old').id);
  await store.whenWritten();
  store.staleCleanupOptions = {
    staleTimeout: 30 * MINUTE,
    maxToLive: null,
    staleCheckInterval: 1e9,
  };
  setClock(60 * MINUTE);
  const check = store.checkCache();
  expect(store.sessions.get('old').leaving).toBe(true);
  await Promise.all([check, store.removeStaleSessions()]);
  await store.whenWritten();
  expect(store.has('old')).toBe(false);
  expect(h.listed(dir)).toEqual([]);
  store.close();
});

test('a cache check that ends inside its last slice stops slicing', async () => {
  let slices = 0;
  const endOfSlice = CacheCheck.prototype._queueBatch;
  jest.spyOn(CacheCheck.prototype, '_queueBatch').mockImplementation(function counted() {
    slices++;
    return endOfSlice.call(this);
  });
  const store = h.openFileCache(h.tempDir(), { cacheTimeout: 1, logger: h.recordingLogger() });
  // Only reachable by holding a session under an id no file can have: its write fails at once.
  const bad = new HammerheadSession({ id: 'x\uD800' });
  bad.lastUsed = bad.createdAt - 1000;
  store.held.hold('x\uD800', bad);
  await store.checkCache();
  const atEnd = slices;
  await h.sleep(50);
  expect(slices).toBe(atEnd);
  store.held.drop(store.sessions.get('x\uD800'), Cause.DELETED);
  store.close();
});
