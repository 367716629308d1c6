'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { RammerheadSessionMemoryStore } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const ROOT = path.join(__dirname, '..');

const fileCache = h.openFileCache;

function serialized(id, data = {}) {
  const session = new HammerheadSession({ id });
  Object.assign(session.data, data);
  return session.serializeSession();
}

/** Whether a store in another process, fresh on `dir`, finds the session. */
function seenElsewhere(dir, id) {
  const script = `
    const { RammerheadSessionFileCache } = require(${JSON.stringify(ROOT)});
    const sessionClass = require(${JSON.stringify(path.join(ROOT, 'demo', 'hammerhead-session'))});
    const store = new RammerheadSessionFileCache({ saveDirectory: ${JSON.stringify(dir)}, sessionClass, staleCleanupOptions: null });
    process.stdout.write(String(store.has(${JSON.stringify(id)})));
  `;
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }) === 'true';
}

describe('delete', () => {
  test('reports false and keeps the session when its file cannot be removed', () => {
    const dir = h.tempDir();
    const store = fileCache(dir);
    store.addSerializedSession('on-disk', serialized('on-disk'));
    const held = store.get(store.add('held').id);
    return store.whenWritten().then(() => {
      const code = h.lockDirectory(dir);
      try {
        expect(store.delete('on-disk')).toBe(false);
        expect(store.delete('held')).toBe(false);
        expect(store.logger.lines.error.join('\n')).toMatch(new RegExp(`on-disk: ${code}`));
        expect(store.logger.lines.error.join('\n')).toMatch(new RegExp(`held: ${code}`));
        expect(store.has('on-disk')).toBe(true);
        expect(store.get('held')).toBe(held);
      } finally {
        h.unlockDirectory(dir);
      }
      for (const id of ['on-disk', 'held']) {
        expect(store.delete(id)).toBe(true);
        expect(store.has(id)).toBe(false);
        expect(store.get(id)).toBeUndefined();
        expect(seenElsewhere(dir, id)).toBe(false);
      }
      store.close();
    });
  });
});

describe('addSerializedSession and get share one parser', () => {
  const TRICKY = [
    // JSON.parse keeps the last "data"; a parser that kept the first would judge another session.
    `{"data":{"lastUsed":1},"data":{"lastUsed":2},"serializedCookieJar":${JSON.stringify(
      JSON.parse(serialized('x')).serializedCookieJar,
    )}}`,
    serialized('x').replace(/"lastUsed":\d+/, '"lastUsed":1e400'),
  ];

  test.each([
    ['FileCache', (dir) => fileCache(dir)],
    ['MemoryStore', () => new RammerheadSessionMemoryStore({ sessionClass: HammerheadSession })],
  ])('%s refuses JSON that a file read would judge corrupt, and stores nothing', (_, make) => {
    const dir = h.tempDir();
    const store = make(dir);
    for (const json of TRICKY) {
      // The session class itself accepts it...
      expect(() => HammerheadSession.DeserializeSession('x', json)).not.toThrow();
      // ...the store does not, since get() would not serve it back.
      expect(() => store.addSerializedSession('x', json)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_SESSION' }),
      );
      expect(store.has('x')).toBe(false);
    }
    expect(fs.readdirSync(dir)).toEqual([]);
    store.close();
  });

  test('what a file read refuses, addSerializedSession refuses', () => {
    const dir = h.tempDir();
    for (const [index, json] of TRICKY.entries()) {
      fs.writeFileSync(path.join(dir, `f${index}.rhfsession`), json);
    }
    const store = fileCache(dir, { deleteCorruptedSessions: false });
    expect(store.get('f0')).toBeUndefined();
    expect(store.get('f1')).toBeUndefined();
    expect(store.logger.lines.warn.join('\n')).toMatch(/f0.*corrupt/);
    store.close();
  });
});

describe('addSerializedSession when the file cannot be written', () => {
  test('keeps the session in memory, logs it, returns, and writes it once it can', async () => {
    const dir = h.tempDir();
    const store = fileCache(dir);
    const code = h.lockDirectory(dir);
    try {
      expect(() =>
        store.addSerializedSession('new', serialized('new', { owner: 'new' })),
      ).not.toThrow();
      // Invalid input still throws, as in the original.
      expect(() => store.addSerializedSession('bad', '{')).toThrow(SyntaxError);
      h.expectTypeError(() => store.addSerializedSession('', serialized('')));
      expect(store.logger.lines.error.join('\n')).toMatch(new RegExp(`new.*${code}`));
      expect(store.get('new').data.owner).toBe('new');
      expect(store.has('new')).toBe(true);
      expect(fs.existsSync(path.join(dir, 'new.rhfsession'))).toBe(false);
      await store.checkCache();
      expect(store.cachedSessions.has('new')).toBe(true);
    } finally {
      h.unlockDirectory(dir);
    }
    // Written at the next cache check, though still in use.
    await store.checkCache();
    await store.whenWritten();
    expect(store.cachedSessions.has('new')).toBe(true);
    expect(seenElsewhere(dir, 'new')).toBe(true);
    store.close();
    expect(fileCache(dir).get('new').data.owner).toBe('new');
  });

  test('a rammerhead /newsession under a full disk does not kill the server', async () => {
    // The route calls addSerializedSession inside an async handler with no catch.
    const dir = h.tempDir();
    const store = fileCache(dir);
    const code = h.lockDirectory(dir);
    let unhandled = null;
    const onUnhandled = (error) => (unhandled = error);
    process.on('unhandledRejection', onUnhandled);
    try {
      const route = async () => store.addSerializedSession('s', serialized('s'));
      await route();
      await h.sleep(10);
      expect(unhandled).toBe(null);
      expect(store.logger.lines.error.join('\n')).toContain(code);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      h.unlockDirectory(dir);
    }
    store.close();
    expect(fs.existsSync(path.join(dir, 's.rhfsession'))).toBe(true);
  });
});

describe('has and get', () => {
  test('agree on a file that parses but that the session class cannot revive', () => {
    const dir = h.tempDir();
    fs.writeFileSync(path.join(dir, 'victim.rhfsession'), '{"data":{},"serializedCookieJar":"{}"}');
    const store = fileCache(dir, { deleteCorruptedSessions: false });
    expect(store.has('victim')).toBe(false);
    expect(store.get('victim')).toBeUndefined();
    expect(store.keys()).not.toContain('victim');
    store.close();
  });

  test('has of a stored session revives it without keeping it in memory', () => {
    const dir = h.tempDir();
    const store = fileCache(dir);
    store.addSerializedSession('a', serialized('a'));
    expect(store.has('a')).toBe(true);
    expect(store.sessions.has('a')).toBe(false);
    expect(store.get('a').id).toBe('a');
    store.close();
  });
});
