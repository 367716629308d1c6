'use strict';

// The documented API, run against every store. What only one store does is tested in its own
// file.
const fs = require('fs');
const path = require('path');
const {
  RammerheadSessionAbstractStore,
  RammerheadSessionFileCache,
  RammerheadSessionMemoryStore,
  RammerheadSessionRedisStore,
} = require('..');
const h = require('./helpers');
const { RedisServer } = require('./redis-server');
const { RedisCluster } = require('./support/redis-cluster');
const { RedisSentinelGroup } = require('./support/redis-sentinel');
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
/** Ids no store accepts: they cannot name a session file, or would share one with another id. */
const IMPOSSIBLE = [
  '',
  '.',
  '..',
  '/',
  '\\',
  '../victim',
  '..\\victim',
  'a/b',
  'a\\b',
  '/etc/passwd',
  'a\0b',
  '\0',
  'é'.repeat(123),
  'x'.repeat(245),
  'victim\uD800',
  'victim\uDC00',
  '\uDFFF',
];

const fixture = (dir, id) => fs.readFileSync(path.join(dir, `${id}.rhfsession`), 'utf8');
const GOOD_JSON = fixture(h.GOOD, h.GOOD_IDS.cookiesAndLocalStorage);

/**
 * Where a store that skipped its id checks would look for each impossible id. A session file is
 * planted at every such place (inside the directory and outside it), so that "absent" can only
 * mean the id was refused, never that nothing happened to be there.
 */
function plantDecoys(root, saveDirectory) {
  const places = new Set();
  for (const id of IMPOSSIBLE) {
    // What a lossy UTF-16 to UTF-8 conversion, or a plain path join, would make of the id.
    const lossy = Buffer.from(id, 'utf8').toString('utf8');
    if (lossy.includes('\0')) continue;
    places.add(path.resolve(saveDirectory, `${lossy}.rhfsession`));
  }
  const planted = [];
  for (const place of places) {
    if (!place.startsWith(root) || place === saveDirectory) continue;
    try {
      fs.mkdirSync(path.dirname(place), { recursive: true });
      fs.writeFileSync(place, GOOD_JSON);
      planted.push(place);
    } catch {
      // too long a name for this file system: nothing can be there either
    }
  }
  return planted;
}

/** Compressed and encrypted at rest (see codecs.test.js), which must change nothing else. */
const ENCODED = {
  compression: 'zstd',
  encryptionKeys: [require('crypto').randomBytes(32).toString('base64')],
};

const STORES = [
  ...[
    ['RammerheadSessionFileCache', {}],
    ['RammerheadSessionFileCache, zstd and AES-256-GCM', ENCODED],
  ].map(([name, codec]) => [
    name,
    (options = {}) => {
      const { root, saveDirectory } = h.sessionsDirectory();
      const store = new RammerheadSessionFileCache({
        saveDirectory,
        sessionClass: HammerheadSession,
        staleCleanupOptions: null,
        ...codec,
        ...options,
      });
      return { store, root, saveDirectory };
    },
    RammerheadSessionFileCache,
  ]),
  [
    'RammerheadSessionMemoryStore',
    (options = {}) => {
      const { root, saveDirectory } = h.sessionsDirectory();
      const store = new RammerheadSessionMemoryStore({
        sessionClass: HammerheadSession,
        ...options,
      });
      return { store, root, saveDirectory };
    },
    RammerheadSessionMemoryStore,
  ],
  ...[
    ['RammerheadSessionRedisStore', () => redis.url, {}],
    ['RammerheadSessionRedisStore, zstd and AES-256-GCM', () => redis.url, ENCODED],
    ['RammerheadSessionRedisStore on a Redis Cluster', () => cluster.url, {}],
    ['RammerheadSessionRedisStore behind Sentinels', () => sentinels.url, {}],
  ].map(([name, url, codec]) => [
    name,
    (options = {}) => {
      const { root, saveDirectory } = h.sessionsDirectory();
      const store = new RammerheadSessionRedisStore({
        redisUrl: url(),
        keyPrefix: `contract${++prefixes}:`,
        sessionClass: HammerheadSession,
        staleCleanupOptions: null,
        ...codec,
        ...options,
      });
      return { store, root, saveDirectory };
    },
    RammerheadSessionRedisStore,
  ]),
];

let redis;
let cluster;
let sentinels;
let prefixes = 0;
beforeAll(async () => {
  redis = await RedisServer.start();
  cluster = await RedisCluster.start();
  sentinels = await RedisSentinelGroup.start();
}, 90000);
afterAll(async () => {
  for (const running of [redis, cluster, sentinels]) if (running) await running.close();
});

describe.each(STORES)('%s', (_name, make, Store) => {
  let opened = [];
  function open(options) {
    const made = make(options);
    opened.push(made.store);
    return made;
  }
  afterEach(() => {
    for (const store of opened) store.close();
    opened = [];
  });

  test('is a RammerheadSessionAbstractStore and takes a proxy’s place', () => {
    const { store } = open();
    expect(store).toBeInstanceOf(RammerheadSessionAbstractStore);
    const closed = [];
    const held = new Map([['old', { id: 'old' }]]);
    const proxy = { openSessions: held, closeSession: (s) => closed.push(s.id) };
    store.attachToProxy(proxy);
    expect(proxy.openSessions).toBe(store);
    expect(closed).toEqual(['old']);
    h.expectTypeError(() => store.attachToProxy(proxy), 'already attached');
  });

  test('add returns a new session under its id; adding the id again throws an Error', () => {
    const { store } = open();
    const session = store.add('one');
    expect(session).toBeInstanceOf(HammerheadSession);
    expect(session.id).toBe('one');
    let error;
    try {
      store.add('one');
    } catch (e) {
      error = e;
    }
    expect(error).toBeDefined();
    expect(error.name).toBe('Error');
    expect(error.message).toContain('one');
  });

  test('get returns the very session stored, updating lastUsed unless told not to', () => {
    const { store } = open();
    const session = store.add('a');
    session.lastUsed = 5;
    expect(store.get('a', false)).toBe(session);
    expect(session.lastUsed).toBe(5);
    const before = Date.now();
    expect(store.get('a')).toBe(session);
    expect(session.lastUsed).toBeGreaterThanOrEqual(before);
    expect(store.get('missing')).toBeUndefined();
  });

  test('has, keys and delete see exactly the sessions stored', () => {
    const { store } = open();
    store.add('a');
    store.addSerializedSession('b', GOOD_JSON);
    expect(store.has('a')).toBe(true);
    expect(store.has('b')).toBe(true);
    expect(store.has('c')).toBe(false);
    expect(store.keys().sort()).toEqual(['a', 'b']);
    expect(store.delete('a')).toBe(true);
    expect(store.delete('a')).toBe(false);
    expect(store.delete('never')).toBe(false);
    expect(store.has('a')).toBe(false);
    expect(store.get('a')).toBeUndefined();
    expect(store.keys()).toEqual(['b']);
  });

  test('keys() lists a session held in memory and stored once', async () => {
    const { store } = open();
    store.add('a');
    store.addSerializedSession('b', GOOD_JSON);
    store.get('b');
    if (store.whenWritten) await store.whenWritten();
    expect(store.keys().sort()).toEqual(['a', 'b']);
  });

  test('addSerializedSession revives real rammerhead sessions, cookies and data intact', () => {
    const { store } = open();
    for (const id of Object.values(h.GOOD_IDS)) {
      const json = fixture(h.GOOD, id);
      expect(store.addSerializedSession(id, json)).toBeUndefined();
      const session = store.get(id, false);
      expect(session.id).toBe(id);
      const stored = JSON.parse(json);
      expect({ ...session.data, lastUsed: 0 }).toEqual({ ...stored.data, lastUsed: 0 });
      const cookies = (s) => JSON.parse(s.serializedCookieJar).cookies.map((c) => [c.key, c.value]);
      expect(cookies(JSON.parse(session.serializeSession()))).toEqual(cookies(stored));
    }
  });

  test('addSerializedSession replaces a session held under the same id', () => {
    const { store } = open();
    const old = store.add('a');
    old.data.restrictIP = '10.0.0.1';
    store.get('a');
    store.addSerializedSession('a', GOOD_JSON);
    const session = store.get('a', false);
    expect(session).not.toBe(old);
    expect(session.data.localStorage).toEqual(JSON.parse(GOOD_JSON).data.localStorage);
  });

  test('addSerializedSession refuses what is not a session, storing nothing', () => {
    const { store } = open();
    const jar = JSON.parse(GOOD_JSON).serializedCookieJar;
    const refused = [
      ['{', 'SyntaxError'],
      ['[1,2]', 'Error'],
      [JSON.stringify({ data: {} }), 'Error'],
      [JSON.stringify({ serializedCookieJar: jar }), 'Error'],
      [`{"data":{},"data":{},"serializedCookieJar":${JSON.stringify(jar)}}`, 'ERR_INVALID_SESSION'],
      [
        `{"data":{"lastUsed":1e400},"serializedCookieJar":${JSON.stringify(jar)}}`,
        'ERR_INVALID_SESSION',
      ],
    ];
    for (const [json, kind] of refused) {
      let error;
      try {
        store.addSerializedSession('x', json);
      } catch (e) {
        error = e;
      }
      expect(error).toBeDefined();
      if (kind.startsWith('ERR_')) expect(error.code).toBe(kind);
      else expect(error.name).toBe(kind);
      expect(store.has('x')).toBe(false);
    }
    for (const id of h.badIds()) {
      const file = path.join(h.BAD, `${id}.rhfsession`);
      if (fs.statSync(file).isDirectory()) continue;
      expect(() => store.addSerializedSession(id, fs.readFileSync(file, 'utf8'))).toThrow();
      expect(store.has(id)).toBe(false);
    }
    expect(store.keys()).toEqual([]);
  });

  test('a non-string id throws a TypeError from every method', () => {
    const { store } = open();
    for (const id of NOT_STRINGS) {
      for (const call of [
        () => store.get(id),
        () => store.get(id, false),
        () => store.has(id),
        () => store.add(id),
        () => store.delete(id),
        () => store.addSerializedSession(id, GOOD_JSON),
      ]) {
        h.expectTypeError(call);
      }
    }
  });

  test('impossible ids are absent and refused with the rule, whatever lies where they point', () => {
    const { store, root, saveDirectory } = open();
    const decoys = plantDecoys(root, saveDirectory);
    expect(decoys.length).toBeGreaterThan(8);
    for (const id of IMPOSSIBLE) {
      expect(store.get(id)).toBeUndefined();
      expect(store.get(id, false)).toBeUndefined();
      expect(store.has(id)).toBe(false);
      expect(store.delete(id)).toBe(false);
      const error = h.expectTypeError(() => store.add(id), 'session id');
      expect(error.code).toBe('ERR_INVALID_SESSION_ID');
      expect(h.expectTypeError(() => store.addSerializedSession(id, GOOD_JSON)).code).toBe(
        'ERR_INVALID_SESSION_ID',
      );
    }
    for (const decoy of decoys) expect(fs.readFileSync(decoy, 'utf8')).toBe(GOOD_JSON);
    expect(store.keys().filter((id) => IMPOSSIBLE.includes(id))).toEqual([]);
  });

  test('odd but valid ids are sessions like any other', () => {
    const { store } = open();
    for (const id of h.ODD_BUT_VALID_IDS) {
      const session = store.add(id);
      expect(store.get(id)).toBe(session);
      expect(store.has(id)).toBe(true);
    }
    expect(store.keys().sort()).toEqual([...h.ODD_BUT_VALID_IDS].sort());
    for (const id of h.ODD_BUT_VALID_IDS) expect(store.delete(id)).toBe(true);
    expect(store.keys()).toEqual([]);
  });

  test('options of the wrong type throw a TypeError naming the option', () => {
    for (const [name, value] of [
      ['logger', 'console'],
      ['logger', { debug() {} }],
      ['sessionClass', {}],
      ['sessionClass', function NoDeserialize() {}],
    ]) {
      h.expectTypeError(() => make({ [name]: value }), name);
    }
    for (const notAnObject of ['options', 5, true]) {
      h.expectTypeError(() => new Store(notAnObject), 'options must be an object');
    }
  });

  test('logs to the logger given, and prints nothing by default', () => {
    const logger = h.recordingLogger();
    const { store: logged } = open({ logger });
    logged.add('a');
    expect(logger.lines.debug.join('\n')).toContain('a');

    const printed = [];
    const spies = [
      jest.spyOn(process.stdout, 'write').mockImplementation((s) => printed.push(s)),
      jest.spyOn(process.stderr, 'write').mockImplementation((s) => printed.push(s)),
      ...['log', 'info', 'warn', 'error', 'debug'].map((m) =>
        jest.spyOn(console, m).mockImplementation((s) => printed.push(s)),
      ),
    ];
    try {
      const { store } = open();
      store.add('a');
      store.get('a');
      store.addSerializedSession('b', GOOD_JSON);
      store.delete('a');
      store.get('../victim');
      expect(() => store.addSerializedSession('c', '{')).toThrow(
        expect.objectContaining({ name: 'SyntaxError' }),
      );
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect(printed).toEqual([]);
  });
});
