'use strict';

const { RammerheadSessionFileCache, RammerheadSessionMemoryStore } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const COUNT = 5000;
/** The most sessions a cleanup may judge between two turns of the event loop. */
const MAX_PER_TURN = 1024;

const HOUR = 60 * 60 * 1000;

/** Every clock the stores and sessions read moves `ms` ahead, as if that much time had passed. */
function advanceClock(ms) {
  const realNow = Date.now;
  jest.spyOn(Date, 'now').mockImplementation(() => realNow() + ms);
}

afterEach(() => jest.restoreAllMocks());

test('MemoryStore cleanup removes expired sessions a slice at a time', async () => {
  const store = new RammerheadSessionMemoryStore({
    sessionClass: HammerheadSession,
    staleTimeout: 60000,
  });
  for (let i = 0; i < COUNT; i++) store.add(`s${i}`);
  advanceClock(HOUR);
  store.add('fresh');
  const largest = await h.largestMovePerTurn(
    () => store.sessions.size,
    () => store._removeStaleSessions(),
  );
  expect(store.keys()).toEqual(['fresh']);
  expect(largest).toBeGreaterThan(0);
  expect(largest).toBeLessThanOrEqual(MAX_PER_TURN);
  store.close();
});

test('FileCache stale cleanup deletes expired held sessions a slice at a time', async () => {
  const store = new RammerheadSessionFileCache({
    saveDirectory: h.tempDir(),
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  for (let i = 0; i < COUNT; i++) store.add(`s${i}`);
  advanceClock(HOUR);
  store.add('fresh');
  await store.whenWritten();
  store.staleCleanupOptions = { staleTimeout: 60000, maxToLive: null, staleCheckInterval: 1000 };
  const largest = await h.largestMovePerTurn(
    () => store.cachedSessions.size,
    () => store.removeStaleSessions(),
  );
  expect(store.keys()).toEqual(['fresh']);
  expect(largest).toBeGreaterThan(0);
  expect(largest).toBeLessThanOrEqual(MAX_PER_TURN);
  store.close();
});

test('a session replaced while a cleanup runs is judged by its new values', async () => {
  const store = new RammerheadSessionMemoryStore({
    sessionClass: HammerheadSession,
    staleTimeout: 60000,
  });
  for (let i = 0; i < COUNT; i++) store.add(`s${i}`);
  store.add('last');
  advanceClock(HOUR);
  const cleanup = store._removeStaleSessions();
  await new Promise((resolve) => setImmediate(resolve));
  expect(store.sessions.size).toBeGreaterThan(1);
  store.addSerializedSession('last', new HammerheadSession({ id: 'last' }).serializeSession());
  await cleanup;
  expect(store.keys()).toEqual(['last']);
  store.close();
});

test('FileCache: expired held sessions are absent at once; one stored again meanwhile stays', async () => {
  const saveDirectory = h.tempDir();
  const store = new RammerheadSessionFileCache({
    saveDirectory,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  for (let i = 0; i < COUNT; i++) store.add(`s${i}`);
  await store.whenWritten();
  advanceClock(HOUR);
  store.staleCleanupOptions = { staleTimeout: 60000, maxToLive: null, staleCheckInterval: 1000 };
  const cleanup = store.removeStaleSessions();
  await new Promise((resolve) => setImmediate(resolve));
  expect(store.cachedSessions.has('s0')).toBe(false);
  expect(store.has('s0')).toBe(false);
  expect(store.get('s0')).toBeUndefined();
  expect(store.keys()).not.toContain('s0');
  store.addSerializedSession('s0', new HammerheadSession({ id: 's0' }).serializeSession());
  await cleanup;
  expect(store.keys()).toEqual(['s0']);
  expect(h.listed(saveDirectory)).toEqual(['s0.rhfsession']);
  expect(store.get('s0').id).toBe('s0');
  store.close();
});
