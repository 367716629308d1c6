'use strict';

// The index of held sessions names the sessions due, so a cleanup or cache check judges those
// and no others, however many sessions are held.

const { RammerheadSessionFileCache, RammerheadSessionMemoryStore } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const HELD = 2000;
const MINUTE = 60 * 1000;

/** Sessions that record which of them had their times read. */
class CountingSession extends HammerheadSession {
  get lastUsed() {
    CountingSession.read.add(this.id);
    return super.lastUsed;
  }
  set lastUsed(value) {
    super.lastUsed = value;
  }
  get createdAt() {
    CountingSession.read.add(this.id);
    return super.createdAt;
  }
  set createdAt(value) {
    super.createdAt = value;
  }
}
CountingSession.read = new Set();

const start = Date.now();
/** The clock every store and session reads, set to `start + ms`. */
function setClock(ms) {
  jest.spyOn(Date, 'now').mockImplementation(() => start + ms);
}

afterEach(() => jest.restoreAllMocks());

test('MemoryStore cleanup judges only the expired sessions among thousands held', async () => {
  setClock(0);
  const store = new RammerheadSessionMemoryStore({
    sessionClass: CountingSession,
    staleTimeout: 30 * MINUTE,
    maxToLive: null,
    cleanupInterval: 2 ** 31 - 1,
  });
  for (const id of ['old0', 'old1', 'old2']) store.add(id);
  setClock(10 * MINUTE);
  for (let i = 0; i < HELD; i++) store.add(`s${i}`);
  await store._removeStaleSessions();
  expect(store.keys()).toHaveLength(HELD + 3);

  setClock(35 * MINUTE);
  CountingSession.read.clear();
  await store._removeStaleSessions();
  expect([...CountingSession.read].sort()).toEqual(['old0', 'old1', 'old2']);
  expect(store.keys()).toHaveLength(HELD);
  expect(store.has('old0')).toBe(false);
  store.close();
});

test('a MemoryStore get that touches a session keeps it from expiring', async () => {
  setClock(0);
  const store = new RammerheadSessionMemoryStore({
    sessionClass: HammerheadSession,
    staleTimeout: 30 * MINUTE,
    cleanupInterval: 2 ** 31 - 1,
  });
  store.add('used');
  store.add('idle');
  await store._removeStaleSessions();
  setClock(20 * MINUTE);
  store.get('used');
  setClock(40 * MINUTE);
  await store._removeStaleSessions();
  expect(store.keys()).toEqual(['used']);
  store.close();
});

test('a FileCache cache check judges only the idle sessions among thousands held', async () => {
  setClock(0);
  const store = new RammerheadSessionFileCache({
    saveDirectory: h.tempDir(),
    sessionClass: CountingSession,
    staleCleanupOptions: null,
    cacheTimeout: 20 * MINUTE,
  });
  for (const id of ['idle0', 'idle1']) store.get(store.add(id).id);
  setClock(10 * MINUTE);
  for (let i = 0; i < HELD; i++) store.get(store.add(`s${i}`).id);
  await store.whenWritten();
  await store.checkCache();
  expect(store.sessions.size).toBe(HELD + 2);

  setClock(25 * MINUTE);
  CountingSession.read.clear();
  await store.checkCache();
  expect([...CountingSession.read].sort()).toEqual(['idle0', 'idle1']);
  expect(store.sessions.has('idle0')).toBe(false);
  expect(store.sessions.size).toBe(HELD);
  expect(store.get('idle1').id).toBe('idle1');
  store.close();
});

test('a session taken back during a cache check, unused since, waits for the next check', async () => {
  setClock(0);
  const store = new RammerheadSessionFileCache({
    saveDirectory: h.tempDir(),
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    cacheTimeout: 20 * MINUTE,
  });
  for (let i = 0; i < 50; i++) store.get(store.add(`s${i}`).id);
  await store.whenWritten();
  setClock(25 * MINUTE);
  const check = store.checkCache();
  // Taken back without an update while its write is under way: still idle by its lastUsed.
  const session = store.get('s0', false);
  await check;
  expect(store.sessions.get('s0').session).toBe(session);
  expect(store.sessions.size).toBe(1);
  await store.checkCache();
  expect(store.sessions.size).toBe(0);
  store.close();
});

describe('bringing the index up to date in the background', () => {
  const { HeldSessions } = require('../lib/cache/held-sessions');
  const { Housekeeper } = require('../lib/cache/housekeeper');
  const quiet = { debug() {} };
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  function heldOf(count) {
    const housekeeper = new Housekeeper();
    const held = new HeldSessions(housekeeper, quiet, 'test');
    const all = [];
    for (let i = 0; i < count; i++) all.push(held.hold(`s${i}`, new HammerheadSession()));
    return { housekeeper, held, all };
  }

  test('a catch-up ends while more changes arrive each turn than a turn sends', async () => {
    const { housekeeper, held, all } = heldOf(2000);
    held.sync();
    let caughtUp = false;
    for (let i = 0; i < 1000; i++) held.touch(all[i]);
    held.catchUp().then(() => {
      caughtUp = true;
    });
    let turns = 0;
    // 300 changes a turn, more than one turn of the background update sends.
    while (!caughtUp && turns < 100) {
      for (let i = 0; i < 300; i++) held.touch(all[(turns * 300 + i) % all.length]);
      await nextTurn();
      turns++;
    }
    expect(caughtUp).toBe(true);
    housekeeper.stop();
  });

  test('no update runs in the background once the housekeeper is stopped; a query still sees every change', async () => {
    const { housekeeper, held, all } = heldOf(1000);
    housekeeper.stop();
    // What was under way ends within a turn.
    await nextTurn();
    await nextTurn();
    expect(held.syncing).toBeNull();
    for (const one of all.slice(0, 600)) held.drop(one, 'closed');
    expect(held.syncing).toBeNull();
    expect(held.expired(Date.now() + 1, 0.5, null, 10_000)).toHaveLength(400);
  });
});
