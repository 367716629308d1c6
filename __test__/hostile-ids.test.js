'use strict';

const fs = require('fs');
const path = require('path');
const { RammerheadSessionFileCache } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

/** Random strings from an alphabet rich in path syntax and multi-byte characters, from a seed. */
function randomIds(count, seed) {
  const random = h.seededRandom(seed);
  const alphabet = ['a', 'Z', '0', '.', '/', '\\', '\0', '-', ' ', 'é', '😀', '%', ':', '*'];
  return Array.from({ length: count }, () => {
    const length = Math.floor(random() * 12);
    return Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  });
}

function isValidFileId(id) {
  return (
    id !== '' && id !== '.' && id !== '..' && !/[/\\\0]/.test(id) && Buffer.byteLength(id) <= 244
  );
}

function sandbox() {
  const { root, saveDirectory } = h.sessionsDirectory();
  return { root, saveDirectory, store: h.openFileCache(saveDirectory) };
}

const json = new HammerheadSession({ id: 'template' }).serializeSession();

test('odd but valid ids map to exactly one file each inside the directory', () => {
  const { root, saveDirectory, store } = sandbox();
  for (const id of h.ODD_BUT_VALID_IDS) {
    const session = store.add(id);
    expect(store.get(id)).toBe(session);
    expect(store.has(id)).toBe(true);
  }
  store.close();
  expect(fs.readdirSync(root)).toEqual(['sessions']);
  expect(h.listed(saveDirectory)).toEqual(
    h.ODD_BUT_VALID_IDS.map((id) => `${id}.rhfsession`).sort(),
  );
  const reopened = new RammerheadSessionFileCache({
    saveDirectory,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  expect(reopened.keys().sort()).toEqual([...h.ODD_BUT_VALID_IDS].sort());
  for (const id of h.ODD_BUT_VALID_IDS) expect(reopened.get(id).id).toBe(id);
  for (const id of h.ODD_BUT_VALID_IDS) expect(reopened.delete(id)).toBe(true);
  expect(h.listed(saveDirectory)).toEqual([]);
  reopened.close();
});

test('random ids through every method: files only for valid ids, all inside the directory', () => {
  const { root, saveDirectory, store } = sandbox();
  const added = new Set();
  for (const id of randomIds(400, 20261125)) {
    expect(() => store.get(id)).not.toThrow();
    expect(() => store.has(id)).not.toThrow();
    if (isValidFileId(id)) {
      if (!added.has(id)) store.addSerializedSession(id, json);
      added.add(id);
      expect(store.has(id)).toBe(true);
      expect(store.get(id, false).id).toBe(id);
    } else {
      expect(store.get(id)).toBeUndefined();
      h.expectTypeError(() => store.add(id));
      h.expectTypeError(() => store.addSerializedSession(id, json));
      expect(store.delete(id)).toBe(false);
    }
  }
  expect(fs.readdirSync(root)).toEqual(['sessions']);
  const names = h.listed(saveDirectory);
  expect(names).toEqual([...added].map((id) => `${id}.rhfsession`).sort());
  store.close();
});

describe('ids that are not well-formed UTF-16', () => {
  test('a held session under such an id fails alone: the write queue and cache checks go on', async () => {
    const { saveDirectory, store } = sandbox();
    store.logger = h.recordingLogger();
    const bad = new HammerheadSession({ id: 'x\uD800' });
    store.held.hold('x\uD800', bad);
    store.get('x\uD800');
    store.get(store.add('good').id);
    store.cacheTimeout = 1;
    const later = Date.now() + 1000;
    jest.spyOn(Date, 'now').mockImplementation(() => later);
    await store.checkCache();
    jest.restoreAllMocks();
    await store.whenWritten();
    expect(store.cachedSessions.get('x\uD800')).toBe(bad);
    expect(store.cachedSessions.has('good')).toBe(false);
    expect(store.logger.lines.error.join('\n')).toMatch(/ERR_INVALID_SESSION_ID/);
    expect(h.listed(saveDirectory)).toEqual(['good.rhfsession']);
    const closing = (() => {
      try {
        store.close();
      } catch (error) {
        return error;
      }
    })();
    expect(closing.code).toBe('ERR_SESSIONS_NOT_SAVED');
    expect(closing.failures).toEqual([
      expect.objectContaining({ id: 'x\uD800', code: 'ERR_INVALID_SESSION_ID' }),
    ]);
  });
});
