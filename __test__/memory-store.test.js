'use strict';

const { RammerheadSessionMemoryStore } = require('..');
const { recordingLogger, until } = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const stores = [];
function memoryStore(options = {}) {
  const store = new RammerheadSessionMemoryStore({ sessionClass: HammerheadSession, ...options });
  stores.push(store);
  return store;
}
afterEach(() => stores.splice(0).forEach((s) => s.close()));

describe('RammerheadSessionMemoryStore', () => {
  test('has the documented defaults', () => {
    const store = memoryStore();
    expect(store.staleTimeout).toBe(1000 * 60 * 30);
    expect(store.maxToLive).toBe(1000 * 60 * 60 * 4);
    expect(store.cleanupInterval).toBe(1000 * 60);
  });

  test('add, get, has, keys, delete', () => {
    const store = memoryStore();
    const session = store.add('one');
    expect(session).toBeInstanceOf(HammerheadSession);
    expect(session.id).toBe('one');
    expect(() => store.add('one')).toThrow(expect.objectContaining({ name: 'Error' }));
    expect(store.has('one')).toBe(true);
    expect(store.has('two')).toBe(false);
    expect(store.get('one')).toBe(session);
    expect(store.get('two')).toBeUndefined();
    expect(store.keys()).toEqual(['one']);
    expect(store.delete('one')).toBe(true);
    expect(store.delete('one')).toBe(false);
    expect(store.keys()).toEqual([]);
  });

  test('get updates lastUsed unless told not to', () => {
    const store = memoryStore();
    const session = store.add('a');
    session.lastUsed = 5;
    store.get('a', false);
    expect(session.lastUsed).toBe(5);
    store.get('a');
    expect(session.lastUsed).toBeGreaterThan(5);
  });

  test('addSerializedSession revives, marks used and replaces', () => {
    const store = memoryStore();
    const original = store.add('a');
    original.data.restrictIP = '10.0.0.1';
    original.lastUsed = original.createdAt = 1000;
    const json = original.serializeSession();
    expect(store.addSerializedSession('b', json)).toBeUndefined();
    const copy = store.get('b', false);
    expect(copy).not.toBe(original);
    expect(copy.data.restrictIP).toBe('10.0.0.1');
    expect(copy.lastUsed).toBeGreaterThan(1000);
    store.addSerializedSession('a', json);
    expect(store.get('a')).not.toBe(original);
    expect(() => store.addSerializedSession('c', '{')).toThrow(SyntaxError);
    expect(() => store.addSerializedSession('c', '{"data":{}}')).toThrow(
      expect.objectContaining({ name: 'Error' }),
    );
    expect(store.has('c')).toBe(false);
  });

  test('rejects bad options with a TypeError naming the option', () => {
    const bad = [
      [{ staleTimeout: -1 }, 'staleTimeout'],
      [{ staleTimeout: '10' }, 'staleTimeout'],
      [{ maxToLive: NaN }, 'maxToLive'],
      [{ cleanupInterval: 0 }, 'cleanupInterval'],
      [{ cleanupInterval: 2 ** 31 }, 'cleanupInterval'],
      [{ logger: {} }, 'logger'],
      [{ sessionClass: {} }, 'sessionClass'],
    ];
    for (const [options, name] of bad) {
      expect(() => memoryStore(options)).toThrow(TypeError);
      expect(() => memoryStore(options)).toThrow(name);
    }
    expect(() => memoryStore({ staleTimeout: null, maxToLive: 0 })).not.toThrow();
  });

  test('removes stale sessions by lastUsed', async () => {
    const store = memoryStore({ staleTimeout: 1000, maxToLive: null, cleanupInterval: 5 });
    store.add('fresh');
    store.add('stale').lastUsed = Date.now() - 5000;
    await until(() => !store.has('stale'));
    expect(store.has('fresh')).toBe(true);
  });

  test('removes sessions older than maxToLive however recently used', async () => {
    const store = memoryStore({ staleTimeout: null, maxToLive: 1000, cleanupInterval: 5 });
    store.add('young');
    const old = store.add('old');
    old.createdAt = Date.now() - 5000;
    old.updateLastUsed();
    await until(() => !store.has('old'));
    expect(store.has('young')).toBe(true);
  });

  test('null and 0 limits keep every session', () => {
    const store = memoryStore({ staleTimeout: null, maxToLive: 0 });
    const s = store.add('a');
    s.createdAt = s.lastUsed = 0;
    store._removeStaleSessions();
    expect(store.has('a')).toBe(true);
  });

  test('logs to the given logger and is silent by default', () => {
    const logger = recordingLogger();
    memoryStore({ logger }).add('a');
    expect(logger.lines.debug.join()).toContain('a');
  });

  test('close stops the cleanup', async () => {
    const store = memoryStore({ staleTimeout: 1, cleanupInterval: 5 });
    store.close();
    store.add('a').lastUsed = 0;
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(store.has('a')).toBe(true);
  });
});
