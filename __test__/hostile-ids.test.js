'use strict';

const fs = require('fs');
const path = require('path');
const { RammerheadSessionFileCache, RammerheadSessionMemoryStore } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const NOT_STRINGS = [
  undefined,
  null,
  0,
  1.5,
  NaN,
  true,
  {},
  [],
  ['a'],
  Symbol('id'),
  () => 'id',
  10n,
];
const INVALID = [
  '',
  '.',
  '..',
  '/',
  '\\',
  '../x',
  '..\\x',
  'a/b',
  '/etc/passwd',
  'a\0b',
  '\0',
  'é'.repeat(123),
];
const VALID_ODD = [
  '...',
  ' ',
  '-',
  'CON',
  'ü',
  '😀',
  'a'.repeat(244),
  'é'.repeat(122),
  '%2e%2e%2f',
  '$(rm -rf)',
  '.hidden',
];

/** Random strings from an alphabet rich in path syntax and multi-byte characters. */
function randomIds(count) {
  const alphabet = ['a', 'Z', '0', '.', '/', '\\', '\0', '-', ' ', 'é', '😀', '%', ':', '*'];
  return Array.from({ length: count }, () => {
    const length = Math.floor(Math.random() * 12);
    return Array.from({ length }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join(
      '',
    );
  });
}

function isValidFileId(id) {
  return (
    id !== '' && id !== '.' && id !== '..' && !/[/\\\0]/.test(id) && Buffer.byteLength(id) <= 244
  );
}

function sandbox() {
  const root = h.tempDir();
  const saveDirectory = path.join(root, 'sessions');
  fs.mkdirSync(saveDirectory);
  const store = new RammerheadSessionFileCache({
    saveDirectory,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  return { root, saveDirectory, store };
}

const json = new HammerheadSession({ id: 'template' }).serializeSession();

test('non-string ids throw TypeError from every method of both stores', () => {
  const { store } = sandbox();
  const memory = new RammerheadSessionMemoryStore({ sessionClass: HammerheadSession });
  for (const s of [store, memory]) {
    for (const id of NOT_STRINGS) {
      for (const call of [
        () => s.get(id),
        () => s.get(id, false),
        () => s.has(id),
        () => s.add(id),
        () => s.delete(id),
        () => s.addSerializedSession(id, json),
      ]) {
        expect(call).toThrow(TypeError);
      }
    }
  }
  memory.close();
  store.close();
});

test('ids that cannot be file names never touch the disk and are refused with the rule', () => {
  const { root, store } = sandbox();
  for (const id of INVALID) {
    expect(store.get(id)).toBeUndefined();
    expect(store.has(id)).toBe(false);
    expect(store.delete(id)).toBe(false);
    const error = h.expectTypeError(() => store.add(id), 'session id');
    expect(error.code).toBe('ERR_INVALID_SESSION_ID');
    h.expectTypeError(() => store.addSerializedSession(id, json), 'session id');
  }
  expect(fs.readdirSync(root)).toEqual(['sessions']);
  expect(h.listed(path.join(root, 'sessions'))).toEqual([]);
  store.close();
});

test('odd but valid ids map to exactly one file each inside the directory', () => {
  const { root, saveDirectory, store } = sandbox();
  for (const id of VALID_ODD) {
    const session = store.add(id);
    expect(store.get(id)).toBe(session);
    expect(store.has(id)).toBe(true);
  }
  store.close();
  expect(fs.readdirSync(root)).toEqual(['sessions']);
  expect(h.listed(saveDirectory)).toEqual(VALID_ODD.map((id) => `${id}.rhfsession`).sort());
  const reopened = new RammerheadSessionFileCache({
    saveDirectory,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  expect(reopened.keys().sort()).toEqual([...VALID_ODD].sort());
  for (const id of VALID_ODD) expect(reopened.get(id).id).toBe(id);
  for (const id of VALID_ODD) expect(reopened.delete(id)).toBe(true);
  expect(h.listed(saveDirectory)).toEqual([]);
  reopened.close();
});

test('random ids through every method: files only for valid ids, all inside the directory', () => {
  const { root, saveDirectory, store } = sandbox();
  const added = new Set();
  for (const id of randomIds(400)) {
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
  const LONE = ['victim\uD800', 'victim\uDC00', 'victim\uDBFF', '\uDFFF', 'a\uDC00\uD800b'];

  test('are impossible ids in both stores, never sharing a file with a real one', () => {
    const { root, saveDirectory, store } = sandbox();
    const memory = new RammerheadSessionMemoryStore({ sessionClass: HammerheadSession });
    store.addSerializedSession('victim\uFFFD', json);
    memory.addSerializedSession('victim\uFFFD', json);
    for (const s of [store, memory]) {
      for (const id of LONE) {
        expect(s.get(id)).toBeUndefined();
        expect(s.has(id)).toBe(false);
        expect(s.delete(id)).toBe(false);
        const error = h.expectTypeError(() => s.add(id), 'well-formed');
        expect(error.code).toBe('ERR_INVALID_SESSION_ID');
        h.expectTypeError(() => s.addSerializedSession(id, json), 'well-formed');
      }
      expect(s.get('victim\uFFFD').id).toBe('victim\uFFFD');
      expect(s.keys()).toEqual(['victim\uFFFD']);
    }
    expect(store.has('victim\uD800x')).toBe(false);
    expect(fs.readdirSync(root)).toEqual(['sessions']);
    expect(h.listed(saveDirectory)).toEqual(['victim\uFFFD.rhfsession']);
    memory.close();
    store.close();
  });

  test('a held session under such an id fails alone: the write queue and cache checks go on', async () => {
    const { saveDirectory, store } = sandbox();
    store.logger = h.recordingLogger();
    const bad = new HammerheadSession({ id: 'x\uD800' });
    bad.lastUsed = bad.createdAt - 1000;
    store.cachedSessions.set('x\uD800', bad);
    const good = store.add('good');
    good.lastUsed = good.createdAt - 1000;
    store.cacheTimeout = 1;
    await store.checkCache();
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
