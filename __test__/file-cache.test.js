'use strict';

const fs = require('fs');
const path = require('path');
const { RammerheadSessionFileCache } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const stores = [];
function fileCache(options = {}) {
  const store = new RammerheadSessionFileCache({
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    ...options,
  });
  stores.push(store);
  return store;
}
afterEach(() => {
  for (const store of stores.splice(0)) {
    try {
      store.close();
    } catch {
      // a test that breaks the directory on purpose may leave sessions unsaved
    }
  }
});

const file = (dir, id) => path.join(dir, `${id}.rhfsession`);
const readJson = (dir, id) => JSON.parse(fs.readFileSync(file(dir, id), 'utf8'));

describe('RammerheadSessionFileCache options', () => {
  test('has the documented defaults', () => {
    const store = fileCache({ saveDirectory: h.tempDir(), staleCleanupOptions: undefined });
    expect(store.cacheTimeout).toBe(1000 * 60 * 20);
    expect(store.cacheCheckInterval).toBe(1000 * 60 * 10);
    expect(store.deleteUnused).toBe(true);
    expect(store.deleteCorruptedSessions).toBe(true);
    expect(store.durable).toBe(false);
    expect(store.staleCleanupOptions).toEqual({
      staleTimeout: 1000 * 60 * 60 * 24,
      maxToLive: 1000 * 60 * 60 * 24 * 4,
      staleCheckInterval: 1000 * 60 * 60,
    });
  });

  test('rejects bad options with a TypeError naming the option', () => {
    const saveDirectory = h.tempDir();
    const bad = [
      [{ cacheTimeout: 0 }, 'cacheTimeout'],
      [{ cacheCheckInterval: 'x' }, 'cacheCheckInterval'],
      [{ deleteUnused: 1 }, 'deleteUnused'],
      [{ deleteCorruptedSessions: 'no' }, 'deleteCorruptedSessions'],
      [{ durable: 'yes' }, 'durable'],
      [{ saveDirectory: 5 }, 'saveDirectory'],
      [{ staleCleanupOptions: 5 }, 'staleCleanupOptions'],
      [{ staleCleanupOptions: { staleTimeout: -5 } }, 'staleCleanupOptions.staleTimeout'],
      [
        { staleCleanupOptions: { staleCheckInterval: 0 } },
        'staleCleanupOptions.staleCheckInterval',
      ],
      [{ logger: { warn() {} } }, 'logger'],
    ];
    for (const [options, name] of bad) {
      expect(() => fileCache({ saveDirectory, ...options })).toThrow(TypeError);
      expect(() => fileCache({ saveDirectory, ...options })).toThrow(name);
    }
  });

  test('a missing, non-directory or unwritable saveDirectory is an error naming the path', () => {
    const dir = h.tempDir();
    const missing = path.join(dir, 'missing');
    expect(() => fileCache({ saveDirectory: missing })).toThrow(missing);
    expect(() => fileCache({ saveDirectory: missing })).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    const plain = path.join(dir, 'plain');
    fs.writeFileSync(plain, '');
    expect(() => fileCache({ saveDirectory: plain })).toThrow(
      expect.objectContaining({ code: 'ENOTDIR' }),
    );
    const locked = path.join(dir, 'locked');
    fs.mkdirSync(locked);
    const code = h.lockDirectory(locked);
    try {
      expect(() => fileCache({ saveDirectory: locked })).toThrow(locked);
      expect(() => fileCache({ saveDirectory: locked })).toThrow(expect.objectContaining({ code }));
    } finally {
      h.unlockDirectory(locked);
    }
  });

  test('a stale cleanup object missing limits disables them, as in the original', () => {
    const store = fileCache({
      saveDirectory: h.tempDir(),
      staleCleanupOptions: { staleTimeout: 5000 },
    });
    expect(store.staleCleanupOptions).toEqual({
      staleTimeout: 5000,
      maxToLive: null,
      staleCheckInterval: 1000 * 60 * 60,
    });
  });
});

describe('RammerheadSessionFileCache methods', () => {
  test('add keeps the session in memory and writes its file in the background', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir });
    const session = store.add('one');
    const fresh = JSON.parse(session.serializeSession());
    expect(session).toBeInstanceOf(HammerheadSession);
    await store.whenWritten();
    expect(readJson(dir, 'one')).toEqual(fresh);
    expect(store.get('one')).toBe(session);
    expect(() => store.add('one')).toThrow(expect.objectContaining({ name: 'Error' }));
    expect(store.has('one')).toBe(true);
    expect(store.keys()).toEqual(['one']);
  });

  test('get reads a file once, then serves it from memory, lastUsed updated once a second', async () => {
    const dir = h.copyFixtures(h.GOOD);
    const store = fileCache({ saveDirectory: dir });
    const id = h.GOOD_IDS.plain;
    const before = readJson(dir, id).data.lastUsed;
    const session = store.get(id);
    expect(session.lastUsed).toBeGreaterThan(before);
    session.lastUsed = 7;
    expect(store.get(id, false)).toBe(session);
    expect(session.lastUsed).toBe(7);
    // Updated again once a second has passed since the last update, not on every get.
    expect(store.get(id)).toBe(session);
    expect(session.lastUsed).toBe(7);
    await h.until(() => store.get(id) === session && session.lastUsed > 7);
    expect(store.get('nope')).toBeUndefined();
  });

  test('get(id, false) of a file leaves lastUsed as stored', () => {
    const dir = h.copyFixtures(h.GOOD);
    const store = fileCache({ saveDirectory: dir });
    const id = h.GOOD_IDS.cookiesAndLocalStorage;
    expect(store.get(id, false).lastUsed).toBe(readJson(dir, id).data.lastUsed);
  });

  test('keys lists files and memory once each, and only session files', () => {
    const dir = h.copyFixtures(h.GOOD);
    fs.writeFileSync(path.join(dir, 'other.txt'), 'x');
    const store = fileCache({ saveDirectory: dir });
    store.get(h.GOOD_IDS.plain);
    store.add('new');
    expect(store.keys().sort()).toEqual([...Object.values(h.GOOD_IDS), 'new'].sort());
  });

  test('delete removes the file and the copy in memory', async () => {
    const dir = h.copyFixtures(h.GOOD);
    const store = fileCache({ saveDirectory: dir });
    const id = h.GOOD_IDS.plain;
    store.get(id);
    expect(store.delete(id)).toBe(true);
    expect(fs.existsSync(file(dir, id))).toBe(false);
    expect(store.has(id)).toBe(false);
    expect(store.get(id)).toBeUndefined();
    expect(store.delete(id)).toBe(false);
    store.add('memory-only');
    await store.whenWritten();
    fs.unlinkSync(file(dir, 'memory-only'));
    expect(store.delete('memory-only')).toBe(true);
  });

  test('addSerializedSession writes exactly the given JSON and nothing on bad input', () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir });
    const json = fs.readFileSync(file(h.GOOD, h.GOOD_IDS.cookiesAndLocalStorage), 'utf8');
    expect(store.addSerializedSession('copy', json)).toBeUndefined();
    expect(fs.readFileSync(file(dir, 'copy'), 'utf8')).toBe(json);
    expect(store.has('copy')).toBe(true);
    expect(() => store.addSerializedSession('bad', '{"data":')).toThrow(SyntaxError);
    expect(() => store.addSerializedSession('bad', '{"data":{}}')).toThrow(
      expect.objectContaining({ name: 'Error' }),
    );
    expect(() => store.addSerializedSession('bad', '{"serializedCookieJar":"{}"}')).toThrow(
      expect.objectContaining({ name: 'Error' }),
    );
    expect(fs.existsSync(file(dir, 'bad'))).toBe(false);
  });

  test('addSerializedSession over a session in memory wins over the old copy', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir, cacheTimeout: 1 });
    const old = store.add('a');
    old.updateLastUsed();
    old.data.restrictIP = 'old';
    const imported = JSON.parse(old.serializeSession());
    imported.data.restrictIP = 'imported';
    store.addSerializedSession('a', JSON.stringify(imported));
    expect(store.get('a', false)).not.toBe(old);
    expect(store.get('a', false).data.restrictIP).toBe('imported');
    store.close();
    expect(readJson(dir, 'a').data.restrictIP).toBe('imported');
  });

  test('files are owner-only', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir });
    store.add('a');
    store.addSerializedSession('b', store.get('a').serializeSession());
    await store.whenWritten();
    for (const id of ['a', 'b']) expect(fs.statSync(file(dir, id)).mode & 0o777).toBe(0o600);
  });
});

describe('files written by rammerhead 1.2.64', () => {
  test('load with cookies, localStorage, proxy settings and restrictIP intact', () => {
    const dir = h.copyFixtures(h.GOOD);
    const store = fileCache({ saveDirectory: dir });
    for (const id of Object.values(h.GOOD_IDS)) {
      const stored = readJson(h.GOOD, id);
      const session = store.get(id, false);
      expect(session.id).toBe(id);
      expect(session.data).toEqual(stored.data);
      expect(JSON.parse(session.serializeSession()).serializedCookieJar).toBeDefined();
    }
    const withCookies = store.get(h.GOOD_IDS.cookiesAndLocalStorage, false);
    const jar = JSON.parse(JSON.parse(withCookies.serializeSession()).serializedCookieJar);
    expect(jar.cookies).toHaveLength(3);
    expect(withCookies.data.localStorage).toEqual(
      readJson(h.GOOD, h.GOOD_IDS.cookiesAndLocalStorage).data.localStorage,
    );
    expect(store.get(h.GOOD_IDS.plain, false).data.restrictIP).toBeTruthy();
    expect(store.get(h.GOOD_IDS.proxyNoShuffle, false).data.externalProxySettings).toBeTruthy();
    expect(store.get(h.GOOD_IDS.proxyNoShuffle, false).data.shuffleDict).toBeNull();
  });

  test('are written back in the same shape', () => {
    const dir = h.copyFixtures(h.GOOD);
    const store = fileCache({ saveDirectory: dir, deleteUnused: false });
    for (const id of Object.values(h.GOOD_IDS)) store.get(id);
    store.close();
    for (const id of Object.values(h.GOOD_IDS)) {
      const before = readJson(h.GOOD, id);
      const after = readJson(dir, id);
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
      expect(Object.keys(after.data).sort()).toEqual(Object.keys(before.data).sort());
      expect(typeof after.serializedCookieJar).toBe('string');
      const cookies = (s) => JSON.parse(s.serializedCookieJar).cookies.map((c) => [c.key, c.value]);
      expect(cookies(after)).toEqual(cookies(before));
      expect({ ...after.data, lastUsed: 0 }).toEqual({ ...before.data, lastUsed: 0 });
    }
  });
});

describe('broken files', () => {
  test('never throw from keys, has, get, delete or cleanup and are never sessions', async () => {
    for (const deleteCorruptedSessions of [false, true]) {
      const dir = h.copyFixtures(h.BAD);
      const logger = h.recordingLogger();
      const store = fileCache({ saveDirectory: dir, logger, deleteCorruptedSessions });
      expect(store.keys()).not.toContain('0000000000000000000000000000dirx');
      for (const id of h.badIds()) {
        expect(store.has(id)).toBe(false);
        expect(store.get(id)).toBeUndefined();
      }
      expect(logger.lines.warn).toHaveLength(h.badIds().length);
      expect(store.keys()).toEqual([]);
      for (const id of h.badIds()) expect(() => store.delete(id)).not.toThrow();
      expect(store.keys()).toEqual([]);
      expect(fs.existsSync(path.join(dir, 'README.txt'))).toBe(true);
      expect(fs.existsSync(path.join(dir, 'notes.rhfsession.tmp'))).toBe(true);
    }
  });

  test('get leaves corrupt files alone without deleteCorruptedSessions and removes them with it', () => {
    const corrupt = h.badIds().filter((id) => !id.endsWith('dirx'));
    for (const deleteCorruptedSessions of [false, true]) {
      const dir = h.copyFixtures(h.BAD);
      const store = fileCache({ saveDirectory: dir, deleteCorruptedSessions });
      for (const id of corrupt) {
        expect(store.get(id)).toBeUndefined();
        expect(fs.existsSync(file(dir, id))).toBe(!deleteCorruptedSessions);
      }
      expect(fs.statSync(file(dir, '0000000000000000000000000000dirx')).isDirectory()).toBe(true);
    }
  });

  test('the stale cleanup never throws, and removes corrupt files only with deleteCorruptedSessions', async () => {
    for (const deleteCorruptedSessions of [false, true]) {
      const dir = h.copyFixtures(h.BAD);
      const logger = h.recordingLogger();
      const staleCleanupOptions = { staleTimeout: 60000, staleCheckInterval: 1000000 };
      const store = fileCache({
        saveDirectory: dir,
        deleteCorruptedSessions,
        staleCleanupOptions,
        logger,
      });
      const summary = await store.removeStaleSessions();
      expect(summary.corrupt).toHaveLength(5);
      expect(summary.removedCorrupt).toBe(deleteCorruptedSessions ? 5 : 0);
      expect(logger.lines.warn).toHaveLength(5);
      expect(store.keys()).toEqual([]);
      const left = fs.readdirSync(dir).filter((name) => name.endsWith('.rhfsession'));
      expect(left).toHaveLength(deleteCorruptedSessions ? 1 : 6);
    }
  });
});

describe('cache eviction', () => {
  test('idle sessions are written, then leave memory; get brings the same data back', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir, cacheTimeout: 20, cacheCheckInterval: 5 });
    const session = store.add('a');
    session.updateLastUsed();
    session.lastUsed += 1; // used, so deleteUnused keeps it
    session.data.restrictIP = '1.2.3.4';
    await h.until(() => !store.sessions.has('a'));
    expect(readJson(dir, 'a').data.restrictIP).toBe('1.2.3.4');
    const again = store.get('a');
    expect(again).not.toBe(session);
    expect(again.data.restrictIP).toBe('1.2.3.4');
  });

  test('an active session stays in memory: get updates lastUsed', async () => {
    const dir = h.tempDir();
    // lastUsed is current to within about a second, so a shorter cacheTimeout would evict.
    const store = fileCache({ saveDirectory: dir, cacheTimeout: 1500, cacheCheckInterval: 5 });
    const session = store.add('a');
    const until = Date.now() + 3500;
    while (Date.now() < until) {
      expect(store.get('a')).toBe(session);
      await h.sleep(10);
    }
  });

  test('with deleteUnused, never-used sessions are dropped unwritten, their file kept', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir, cacheTimeout: 1 });
    const session = store.add('a');
    await store.whenWritten();
    session.data.restrictIP = 'changed in memory';
    await h.sleep(5);
    await store.checkCache();
    expect(store.cachedSessions.has('a')).toBe(false);
    expect(readJson(dir, 'a').data.restrictIP).toBeUndefined();
  });

  test('without deleteUnused, never-used sessions are written too', async () => {
    const dir = h.tempDir();
    const store = fileCache({
      saveDirectory: dir,
      deleteUnused: false,
      cacheTimeout: 1,
      cacheCheckInterval: 5,
    });
    const session = store.add('a');
    session.data.restrictIP = 'changed in memory';
    await h.until(() => !store.cachedSessions.has('a'));
    // Out of memory once its write is queued; the file follows when the write lands.
    await h.until(
      () =>
        fs.existsSync(file(dir, 'a')) && readJson(dir, 'a').data.restrictIP === 'changed in memory',
    );
  });

  test('a get during a flush returns the same live object, which stays in memory', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir });
    const session = store.add('a');
    session.lastUsed = Date.now() - store.cacheTimeout - 1000;
    const flushing = store.checkCache();
    expect(store.get('a')).toBe(session);
    await flushing;
    expect(store.cachedSessions.get('a')).toBe(session);
    expect(store.get('a')).toBe(session);
  });

  test('keys() lists a session being written out of memory once, during and after', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir });
    const session = store.add('a');
    store.add('b');
    await store.whenWritten();
    session.lastUsed = Date.now() - store.cacheTimeout - 1000;
    const flushing = store.checkCache();
    // Held and stored, but left out of the index while its write is under way.
    expect(store.cachedSessions.has('a')).toBe(true);
    expect(store.keys().sort()).toEqual(['a', 'b']);
    await flushing;
    expect(store.cachedSessions.has('a')).toBe(false);
    expect(store.keys().sort()).toEqual(['a', 'b']);
  });

  test('close writes every used session and returns only when they are on disk', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir });
    for (let i = 0; i < 50; i++) {
      const s = store.add(`s${i}`);
      s.lastUsed = s.createdAt + 1;
      s.data.n = i;
    }
    store.add('unused');
    await store.whenWritten();
    store.get('unused', false).data.n = 'never';
    store.close();
    for (let i = 0; i < 50; i++) expect(readJson(dir, `s${i}`).data.n).toBe(i);
    expect(readJson(dir, 'unused').data.n).toBeUndefined();
    expect(store.cachedSessions.size).toBe(0);
  });

  test('close writes sessions added just before, even if never used, and leaves no litter', async () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir });
    const sessions = Array.from({ length: 20 }, (_, i) => store.add(`late${i}`));
    store.close();
    for (const session of sessions) {
      expect(readJson(dir, session.id)).toEqual(JSON.parse(session.serializeSession()));
    }
    // Background writes under way at close() end without keeping spare files.
    await store.whenWritten();
    expect(fs.readdirSync(dir)).toHaveLength(20);
  });
});

describe('write failures', () => {
  test('a failed flush keeps the session in memory, logs it and succeeds once the cause is gone', async () => {
    const dir = h.tempDir();
    const saveDirectory = path.join(dir, 'sessions');
    fs.mkdirSync(saveDirectory);
    const logger = h.recordingLogger();
    const store = fileCache({
      saveDirectory,
      logger,
      cacheTimeout: 1,
      cacheCheckInterval: 1000000,
    });
    const session = store.add('a');
    session.lastUsed = session.createdAt + 1;
    session.data.restrictIP = 'kept';
    await store.whenWritten();
    fs.rmSync(saveDirectory, { recursive: true });
    await h.sleep(5);
    await store.checkCache();
    expect(store.cachedSessions.get('a')).toBe(session);
    expect(logger.lines.error.join('\n')).toMatch(/a.*ENOENT/);
    expect(() => store.close()).toThrow(
      expect.objectContaining({ code: 'ERR_SESSIONS_NOT_SAVED' }),
    );
    expect(store.cachedSessions.get('a')).toBe(session);
    fs.mkdirSync(saveDirectory);
    await store.checkCache();
    expect(store.cachedSessions.has('a')).toBe(false);
    expect(readJson(saveDirectory, 'a').data.restrictIP).toBe('kept');
  });

  test('an added session whose file cannot be written stays in memory until it is', async () => {
    const dir = h.tempDir();
    const saveDirectory = path.join(dir, 'sessions');
    fs.mkdirSync(saveDirectory);
    const logger = h.recordingLogger();
    const store = fileCache({ saveDirectory, logger, cacheTimeout: 1 });
    fs.rmSync(saveDirectory, { recursive: true });
    const session = store.add('a');
    await store.whenWritten();
    expect(logger.lines.error.join('\n')).toMatch(/cannot write a yet, .*ENOENT/);
    await h.sleep(5);
    // Never used, but it has no file: written, not dropped.
    await store.checkCache();
    expect(store.cachedSessions.get('a')).toBe(session);
    fs.mkdirSync(saveDirectory);
    await store.checkCache();
    expect(store.cachedSessions.has('a')).toBe(false);
    expect(readJson(saveDirectory, 'a')).toEqual(JSON.parse(session.serializeSession()));
  });

  test('a session that cannot be serialized stays in memory and the check still ends', async () => {
    const logger = h.recordingLogger();
    const store = fileCache({ saveDirectory: h.tempDir(), logger, cacheTimeout: 1 });
    const broken = store.add('broken');
    broken.lastUsed = broken.createdAt - 1000;
    broken.serializeSession = () => {
      throw new Error('cannot serialize');
    };
    const fine = store.add('fine');
    fine.lastUsed = fine.createdAt - 1000;
    await store.checkCache();
    expect(store.cachedSessions.get('broken')).toBe(broken);
    expect(store.cachedSessions.has('fine')).toBe(false);
    expect(logger.lines.error.join('\n')).toContain('broken');
    delete broken.serializeSession;
  });

  test('close tries every session and names the ones it could not save', () => {
    const dir = h.tempDir();
    const store = fileCache({ saveDirectory: dir });
    const good = store.add('good');
    good.lastUsed += 1;
    const bad = store.add('bad');
    bad.lastUsed += 1;
    bad.serializeSession = () => {
      throw new Error('cannot serialize');
    };
    let error;
    try {
      store.close();
    } catch (e) {
      error = e;
    }
    expect(error.message).toContain('bad');
    expect(error.failures.map((f) => f.id)).toEqual(['bad']);
    expect(readJson(dir, 'good').data.lastUsed).toBe(good.lastUsed);
    expect(store.cachedSessions.get('bad')).toBe(bad);
    delete bad.serializeSession;
  });
});

describe('stale cleanup', () => {
  function writeSession(dir, id, createdAt, lastUsed) {
    const s = new HammerheadSession({ id });
    s.createdAt = createdAt;
    s.lastUsed = lastUsed;
    fs.writeFileSync(file(dir, id), s.serializeSession());
  }

  test('runs at construction and deletes files past staleTimeout or maxToLive', async () => {
    const dir = h.tempDir();
    const now = Date.now();
    writeSession(dir, 'fresh', now, now);
    writeSession(dir, 'stale', now - 10000, now - 10000);
    writeSession(dir, 'old', now - 100000, now);
    fileCache({
      saveDirectory: dir,
      staleCleanupOptions: { staleTimeout: 5000, maxToLive: 50000, staleCheckInterval: 1000000 },
    });
    await h.until(() => !fs.existsSync(file(dir, 'stale')) && !fs.existsSync(file(dir, 'old')));
    expect(fs.existsSync(file(dir, 'fresh'))).toBe(true);
  });

  test('runs every staleCheckInterval and judges sessions in memory by their live values', async () => {
    const dir = h.tempDir();
    const store = fileCache({
      saveDirectory: dir,
      staleCleanupOptions: { staleTimeout: 5000, maxToLive: null, staleCheckInterval: 5 },
    });
    const now = Date.now();
    writeSession(dir, 'later', now - 10000, now - 10000);
    const held = store.add('held');
    held.lastUsed = now - 10000;
    const active = store.add('active');
    active.createdAt = 0; // no maxToLive, so only lastUsed counts
    await h.until(() => !fs.existsSync(file(dir, 'later')) && !store.has('held'));
    expect(store.get('active')).toBe(active);
  });

  test('a session in memory is never deleted for what its file says', async () => {
    const dir = h.tempDir();
    const now = Date.now();
    writeSession(dir, 'a', now - 10000, now - 10000);
    const store = fileCache({ saveDirectory: dir });
    const session = store.get('a');
    store.staleCleanupOptions = { staleTimeout: 5000, maxToLive: null, staleCheckInterval: 1000 };
    const summary = await store.removeStaleSessions();
    expect(summary.removed).toBe(0);
    expect(fs.existsSync(file(dir, 'a'))).toBe(true);
    expect(store.get('a')).toBe(session);
  });
});

describe('processes', () => {
  test('a program that only holds stores exits by itself', async () => {
    const { execFileSync } = require('child_process');
    const script = `
      const { RammerheadSessionFileCache, RammerheadSessionMemoryStore } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const sessionClass = require(${JSON.stringify(path.join(__dirname, '..', 'demo', 'hammerhead-session'))});
      new RammerheadSessionFileCache({ saveDirectory: ${JSON.stringify(h.tempDir())}, sessionClass, cacheCheckInterval: 10 });
      new RammerheadSessionMemoryStore({ sessionClass, cleanupInterval: 10 });
      console.log('done');
    `;
    expect(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim()).toBe(
      'done',
    );
  });
});

test('a session first used in the millisecond it was created is still written', async () => {
  const dir = h.tempDir();
  const store = fileCache({ saveDirectory: dir });
  const session = store.add('a');
  await store.whenWritten();
  store.get('a');
  // As if the get had come in the same millisecond as the add.
  session.lastUsed = session.createdAt;
  session.data.payload = 'set by a request';
  store.close();
  expect(readJson(dir, 'a').data.payload).toBe('set by a request');
});

test('a corrupt file replaced by another process before its deletion is kept', () => {
  const dir = h.tempDir();
  const fresh = new HammerheadSession({ id: 'a' });
  fresh.data.owner = 'the other process';
  const writeElsewhere = () => {
    // What another process's atomic write does: a new file renamed over the old one.
    fs.writeFileSync(path.join(dir, 'new'), fresh.serializeSession());
    fs.renameSync(path.join(dir, 'new'), file(dir, 'a'));
  };
  // The logger runs between judging the file corrupt and deleting it.
  const logger = { ...h.recordingLogger(), warn: writeElsewhere };
  for (const corrupt of ['{"data":', '{"data":{},"serializedCookieJar":"not a cookie jar"}']) {
    fs.writeFileSync(file(dir, 'a'), corrupt);
    const store = fileCache({ saveDirectory: dir, logger });
    expect(store.get('a')).toBeUndefined();
    expect(readJson(dir, 'a').data.owner).toBe('the other process');
    store.close();
  }
});
