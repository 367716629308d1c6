'use strict';

const {
  RammerheadSessionAbstractStore,
  RammerheadSessionMemoryStore,
  RammerheadSessionFileCache,
} = require('..');
const { tempDir } = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

function fakeProxy(sessions) {
  const proxy = {
    openSessions: new Map(sessions.map((s) => [s.id, s])),
    closed: [],
    closeSession(session) {
      proxy.closed.push(session.id);
      proxy.openSessions.delete(session.id);
    },
  };
  return proxy;
}

describe('RammerheadSessionAbstractStore', () => {
  test('cannot be instantiated itself', () => {
    expect(() => new RammerheadSessionAbstractStore()).toThrow(
      new Error('abstract classes cannot be instantiated'),
    );
  });

  test('a JavaScript subclass works and both stores are instances', () => {
    class Custom extends RammerheadSessionAbstractStore {}
    const custom = new Custom();
    expect(custom).toBeInstanceOf(RammerheadSessionAbstractStore);
    expect(custom.close()).toBeUndefined();
    expect(() => custom.get('x')).toThrow(
      expect.objectContaining({ name: 'Error', message: 'get() is not implemented' }),
    );
    const memory = new RammerheadSessionMemoryStore({ sessionClass: HammerheadSession });
    const files = new RammerheadSessionFileCache({
      saveDirectory: tempDir(),
      sessionClass: HammerheadSession,
      staleCleanupOptions: null,
    });
    expect(memory).toBeInstanceOf(RammerheadSessionAbstractStore);
    expect(files).toBeInstanceOf(RammerheadSessionAbstractStore);
    memory.close();
    files.close();
  });

  test('attachToProxy closes the proxy sessions, then takes their place', () => {
    const store = new RammerheadSessionMemoryStore({ sessionClass: HammerheadSession });
    const proxy = fakeProxy([{ id: 'a' }, { id: 'b' }]);
    store.attachToProxy(proxy);
    expect(proxy.closed).toEqual(['a', 'b']);
    expect(proxy.openSessions).toBe(store);
    expect(() => store.attachToProxy(proxy)).toThrow(new TypeError('already attached to proxy'));
    store.close();
  });

  test('attachToProxy keeps existing sessions open when asked to', () => {
    const store = new RammerheadSessionMemoryStore({ sessionClass: HammerheadSession });
    const proxy = fakeProxy([{ id: 'a' }]);
    store.attachToProxy(proxy, false);
    expect(proxy.closed).toEqual([]);
    expect(proxy.openSessions).toBe(store);
    store.close();
  });
});
