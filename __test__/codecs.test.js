'use strict';

// Compression and encryption at rest, for the FileCache and the Redis store: every codec read
// back by every store, mixed directories and databases, key rotation, a wrong key, changed bytes
// and a value moved to another id, none of which may be served or destroyed.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { RammerheadSessionFileCache, RammerheadSessionRedisStore } = require('..');
const h = require('./helpers');
const { RedisServer, sessionKey } = require('./redis-server');
const HammerheadSession = require('../demo/hammerhead-session');

const KEY_1 = crypto.randomBytes(32).toString('base64');
const KEY_2 = crypto.randomBytes(32).toString('base64');
const SECRET = 'secret-cookie-value-7f3a';
const CODECS = {
  plain: {},
  zstd: { compression: 'zstd' },
  'aes-256-gcm': { encryptionKeys: [KEY_1] },
  'zstd+aes-256-gcm': { compression: 'zstd', encryptionKeys: [KEY_1] },
};
/** Reads every codec written above. */
const READER = { encryptionKeys: [KEY_2, KEY_1] };

/** A session with a cookie and repetitive localStorage, as rammerhead stores them. */
function sessionJson(id, { localStorage = 200 } = {}) {
  const session = new HammerheadSession({ id });
  session.cookies.setByServer('https://mail.example.com/', [`sid=${SECRET}; Path=/`]);
  session.data.localStorage = {
    'https://app.example.com': {
      data: Object.fromEntries(
        Array.from({ length: localStorage }, (_, i) => [
          `item${i}`,
          JSON.stringify({ id: i, title: `Item ${i}`, tags: ['news', 'video'], seen: i % 3 === 0 }),
        ]),
      ),
    },
  };
  return session.serializeSession();
}

const cookieOf = (session) => session.cookies.getClientString('https://mail.example.com/');

let redis;
let prefixes = 0;
let opened = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(() => redis.close());
afterEach(async () => {
  for (const store of opened) {
    try {
      await store.close();
    } catch {
      // a session left unsaved on purpose
    }
  }
  opened = [];
});

/**
 * The two stores with something at rest, each with a way to read and change what it stores.
 * `open(options)` opens one more store on the same place.
 */
const PLACES = [
  [
    'FileCache',
    () => {
      const { saveDirectory } = h.sessionsDirectory();
      const file = (id) => path.join(saveDirectory, `${id}.rhfsession`);
      return {
        open: (options) =>
          remember(h.openFileCache(saveDirectory, { logger: h.recordingLogger(), ...options })),
        raw: (id) => (fs.existsSync(file(id)) ? fs.readFileSync(file(id)) : null),
        setRaw: (id, bytes) => fs.writeFileSync(file(id), bytes),
      };
    },
  ],
  [
    'RedisStore',
    () => {
      const keyPrefix = `codec${++prefixes}:`;
      const key = (id) => sessionKey(keyPrefix, id);
      return {
        open: (options) => openRedisStore(keyPrefix, options),
        raw: (id) => {
          const text = rawValue(key(id));
          return text === '' ? null : Buffer.from(text, 'latin1');
        },
        setRaw: (id, bytes) => setRawValue(key(id), bytes),
      };
    },
  ],
];

/** A Redis value's bytes, as latin1 text (redis-cli would escape them). */
function rawValue(key) {
  const hex = redis.cli(
    'EVAL',
    "local v = redis.call('GET', KEYS[1]); return v and (v:gsub('.', function(c) return string.format('%02x', c:byte()) end)) or ''",
    '1',
    key,
  );
  return Buffer.from(hex, 'hex').toString('latin1');
}

function setRawValue(key, bytes) {
  const hex = Buffer.from(bytes).toString('hex');
  redis.cli(
    'EVAL',
    "redis.call('SET', KEYS[1], (ARGV[1]:gsub('..', function(x) return string.char(tonumber(x, 16)) end)))",
    '1',
    key,
    hex,
  );
}

/** A Redis store on the test server under `keyPrefix`, closed after the test. */
function openRedisStore(keyPrefix, options) {
  return remember(
    new RammerheadSessionRedisStore({
      redisUrl: redis.url,
      keyPrefix,
      sessionClass: HammerheadSession,
      staleCleanupOptions: null,
      logger: h.recordingLogger(),
      ...options,
    }),
  );
}

function remember(store) {
  opened.push(store);
  return store;
}

describe.each(PLACES)('%s', (_name, makePlace) => {
  test('every codec round-trips, and one store reads them all, mixed in one place', async () => {
    const place = makePlace();
    for (const [name, options] of Object.entries(CODECS)) {
      const writer = place.open(options);
      expect(writer.encoding).toBe(name);
      writer.addSerializedSession(name, sessionJson(name));
      await writer.close();
      const raw = place.raw(name);
      if (name === 'plain') expect(JSON.parse(raw.toString('utf8')).data).toBeDefined();
      else expect(raw.subarray(0, 3).toString()).toBe('RHS');
      expect(raw.includes(SECRET)).toBe(name === 'plain');
    }
    const reader = place.open(READER);
    for (const name of Object.keys(CODECS)) {
      expect(cookieOf(reader.get(name))).toBe(`sid=${SECRET}`);
    }
  });

  test('compressed sessions take at most a third of the plain size', async () => {
    const place = makePlace();
    const plain = place.open({});
    plain.addSerializedSession('p', sessionJson('p'));
    await plain.close();
    const zstd = place.open({ compression: 'zstd', encryptionKeys: [KEY_1] });
    zstd.addSerializedSession('z', sessionJson('z'));
    await zstd.close();
    expect(place.raw('z').length * 3).toBeLessThanOrEqual(place.raw('p').length);
  });

  test('a store started on plain sessions rewrites each in its codec as it writes it', async () => {
    const place = makePlace();
    const plain = place.open({});
    plain.addSerializedSession('old', sessionJson('old'));
    await plain.close();
    const store = place.open(CODECS['zstd+aes-256-gcm']);
    const session = store.get('old');
    expect(cookieOf(session)).toBe(`sid=${SECRET}`);
    session.cookies.setByServer('https://mail.example.com/', ['more=1; Path=/']);
    await store.close();
    expect(place.raw('old').subarray(0, 3).toString()).toBe('RHS');
    expect(place.raw('old').includes(SECRET)).toBe(false);
    const back = place.open(READER).get('old');
    expect(cookieOf(back)).toBe(`sid=${SECRET}; more=1`);
  });

  test('after a key rotation old sessions are read, and each is rewritten with the new key', async () => {
    const place = makePlace();
    const before = place.open({ encryptionKeys: [KEY_1] });
    before.addSerializedSession('a', sessionJson('a'));
    before.addSerializedSession('b', sessionJson('b'));
    await before.close();
    const rotated = place.open({ encryptionKeys: [KEY_2, KEY_1] });
    const a = rotated.get('a');
    a.cookies.setByServer('https://mail.example.com/', ['rotated=1; Path=/']);
    await rotated.close();
    // Only the new key: the session written since reads, the other is kept for the old key.
    const newOnly = place.open({ encryptionKeys: [KEY_2] });
    expect(cookieOf(newOnly.get('a'))).toBe(`sid=${SECRET}; rotated=1`);
    expect(newOnly.get('b')).toBeUndefined();
    await newOnly.close();
    expect(cookieOf(place.open({ encryptionKeys: [KEY_2, KEY_1] }).get('b'))).toBe(`sid=${SECRET}`);
  });

  test('a wrong key, changed bytes or a value moved to another id: not served, kept, logged', async () => {
    const place = makePlace();
    const writer = place.open({ compression: 'zstd', encryptionKeys: [KEY_1] });
    for (const id of ['key', 'flipped', 'first', 'last', 'moved', 'time']) {
      writer.addSerializedSession(id, sessionJson(id));
    }
    await writer.close();
    const change = (id, at, value) => {
      const bytes = Buffer.from(place.raw(id));
      const offset = at < 0 ? bytes.length + at : at;
      bytes[offset] = value === undefined ? bytes[offset] ^ 0x20 : value;
      place.setRaw(id, bytes);
    };
    change('flipped', 300);
    change('first', 0);
    change('last', -1);
    change('time', 16); // a byte of the readable lastUsed
    place.setRaw('moved', place.raw('key'));
    const kept = {};
    for (const id of ['key', 'flipped', 'first', 'last', 'moved', 'time']) kept[id] = place.raw(id);

    const unchanged = async (store, ids) => {
      await store.checkCache();
      await store.removeStaleSessions();
      await store.close();
      for (const id of ids) expect(place.raw(id)).toEqual(kept[id]);
    };
    const wrongKey = place.open({ encryptionKeys: [KEY_2] });
    for (const id of Object.keys(kept)) {
      expect(wrongKey.get(id)).toBeUndefined();
      expect(wrongKey.has(id)).toBe(false);
    }
    await unchanged(wrongKey, Object.keys(kept));
    expect(wrongKey.logger.lines.warn.join('\n')).toMatch(
      /ERR_SESSION_UNDECRYPTABLE .* it is encrypted with key [0-9a-f]{8}, which is not among the keys set/,
    );

    const rightKey = place.open({ encryptionKeys: [KEY_1], deleteCorruptedSessions: true });
    expect(cookieOf(rightKey.get('key'))).toBe(`sid=${SECRET}`);
    const changed = ['flipped', 'first', 'last', 'moved', 'time'];
    for (const id of changed) {
      expect(rightKey.get(id)).toBeUndefined();
      expect(rightKey.has(id)).toBe(false);
    }
    await unchanged(rightKey, changed);
    expect(rightKey.logger.lines.warn.join('\n')).toMatch(
      /ERR_SESSION_UNDECRYPTABLE .* its bytes were changed, or it was stored under another id/,
    );
  });

  test('keys never appear in logs, errors or stats', async () => {
    const place = makePlace();
    const store = place.open({ compression: 'zstd', encryptionKeys: [KEY_1, KEY_2] });
    store.addSerializedSession('a', sessionJson('a'));
    const wrong = place.open({ encryptionKeys: [crypto.randomBytes(32).toString('base64')] });
    await store.close();
    expect(wrong.get('a')).toBeUndefined();
    const seen = JSON.stringify([
      store.logger.lines,
      wrong.logger.lines,
      store.stats(),
      wrong.stats(),
      Object.entries(store),
    ]);
    for (const key of [KEY_1, KEY_2]) {
      expect(seen).not.toContain(key);
      expect(seen).not.toContain(Buffer.from(key, 'base64').toString('hex'));
    }
    let error;
    try {
      place.open({ encryptionKeys: [KEY_1.slice(0, 40)] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toContain('key 1 must be 32 bytes in base64');
    expect(error.message).not.toContain(KEY_1.slice(0, 40));
  });
});

describe('options and environment variables', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of ['RAMMERHEAD_SESSION_COMPRESSION', 'RAMMERHEAD_SESSION_KEYS']) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  test('the variables apply when the options are absent, and the options win', () => {
    const { saveDirectory } = h.sessionsDirectory();
    process.env.RAMMERHEAD_SESSION_COMPRESSION = 'zstd';
    process.env.RAMMERHEAD_SESSION_KEYS = ` ${KEY_1} , ${KEY_2}`;
    expect(remember(h.openFileCache(saveDirectory)).encoding).toBe('zstd+aes-256-gcm');
    const own = remember(
      h.openFileCache(saveDirectory, { compression: 'none', encryptionKeys: [] }),
    );
    expect(own.encoding).toBe('plain');
    expect(remember(h.openFileCache(saveDirectory, { compression: null })).encoding).toBe(
      'aes-256-gcm',
    );
  });

  test('bad values throw a TypeError naming the option or variable, never the key', () => {
    const { saveDirectory } = h.sessionsDirectory();
    h.expectTypeError(
      () => h.openFileCache(saveDirectory, { compression: 'gzip' }),
      "option compression must be 'zstd' or 'none'",
    );
    h.expectTypeError(
      () => h.openFileCache(saveDirectory, { encryptionKeys: KEY_1 }),
      'option encryptionKeys must be an array',
    );
    h.expectTypeError(
      () => h.openFileCache(saveDirectory, { encryptionKeys: [KEY_1, KEY_1] }),
      'keys 1 and 2 are the same key',
    );
    process.env.RAMMERHEAD_SESSION_KEYS = `${KEY_1},not-a-key`;
    h.expectTypeError(
      () => h.openFileCache(saveDirectory),
      'environment variable RAMMERHEAD_SESSION_KEYS: key 2 must be 32 bytes',
    );
    delete process.env.RAMMERHEAD_SESSION_KEYS;
    process.env.RAMMERHEAD_SESSION_COMPRESSION = 'lz4';
    h.expectTypeError(
      () => h.openFileCache(saveDirectory),
      'environment variable RAMMERHEAD_SESSION_COMPRESSION must be zstd or none',
    );
  });

  test('with encryption keys nothing is deleted as corrupt, whatever deleteCorruptedSessions says', () => {
    const { saveDirectory } = h.sessionsDirectory();
    fs.writeFileSync(path.join(saveDirectory, 'broken.rhfsession'), '{"data":');
    const store = remember(
      h.openFileCache(saveDirectory, { encryptionKeys: [KEY_1], deleteCorruptedSessions: true }),
    );
    expect(store.deleteCorruptedSessions).toBe(false);
    expect(store.get('broken')).toBeUndefined();
    expect(fs.existsSync(path.join(saveDirectory, 'broken.rhfsession'))).toBe(true);
  });
});

describe('FileCache stale cleanup', () => {
  test('a store with keys deletes only expired files it authenticates; one without keys judges by the header', async () => {
    const { saveDirectory } = h.sessionsDirectory();
    const file = (id) => path.join(saveDirectory, `${id}.rhfsession`);
    const writer = h.openFileCache(saveDirectory, { compression: 'zstd', encryptionKeys: [KEY_1] });
    const old = JSON.parse(sessionJson('old'));
    old.data.createdAt = old.data.lastUsed = Date.now() - 10 * 24 * 3600 * 1000;
    writer.addSerializedSession('old', JSON.stringify(old));
    writer.addSerializedSession('fresh', sessionJson('fresh'));
    writer.addSerializedSession('aged', sessionJson('aged'));
    await writer.close();
    // Moved under another id; and an expired-looking header forged on a fresh session, its key
    // id changed too so that no key vouches for it.
    fs.copyFileSync(file('old'), file('moved'));
    const aged = fs.readFileSync(file('aged'));
    aged.writeDoubleLE(1, 13);
    aged[21] ^= 1;
    fs.writeFileSync(file('aged'), aged);
    const sweep = async (options) => {
      const store = remember(
        h.openFileCache(saveDirectory, {
          staleCleanupOptions: { staleTimeout: 24 * 3600 * 1000 },
          ...options,
        }),
      );
      await store.removeStaleSessions();
      await store.close();
      return h.listed(saveDirectory);
    };
    const all = ['aged', 'fresh', 'moved', 'old'].map((id) => `${id}.rhfsession`);
    // A wrong key destroys nothing.
    expect(await sweep({ encryptionKeys: [KEY_2] })).toEqual(all);
    // The right key: only the expired session it authenticates goes.
    expect(await sweep({ encryptionKeys: [KEY_2, KEY_1] })).toEqual(
      ['aged', 'fresh', 'moved'].map((id) => `${id}.rhfsession`),
    );
    // Without keys, by the readable timestamps alone, as on a host that never reads them.
    expect(await sweep({})).toEqual(['fresh.rhfsession']);
  });
});

describe('RedisStore between hosts', () => {
  test('two hosts with the same keys share cookies, merges included', async () => {
    const keyPrefix = `codec${++prefixes}:`;
    const open = () => openRedisStore(keyPrefix, { compression: 'zstd', encryptionKeys: [KEY_1] });
    const [a, b] = [open(), open()];
    a.addSerializedSession('s', sessionJson('s'));
    const onA = a.get('s');
    const onB = b.get('s');
    onA.cookies.setByServer('https://mail.example.com/', ['fromA=1; Path=/']);
    onB.cookies.setByServer('https://mail.example.com/', ['fromB=1; Path=/']);
    await a.writeChanges();
    await a.whenWritten();
    await b.writeChanges();
    await b.whenWritten();
    const fresh = open();
    expect(cookieOf(fresh.get('s')).split('; ').sort()).toEqual(
      ['fromA=1', 'fromB=1', `sid=${SECRET}`].sort(),
    );
    expect(Buffer.from(rawValue(sessionKey(keyPrefix, 's')), 'latin1').includes(SECRET)).toBe(
      false,
    );
  });

  test('a host whose keys cannot read the newer stored copy never overwrites it', async () => {
    const keyPrefix = `codec${++prefixes}:`;
    const open = (prefix, keys) => openRedisStore(prefix, { encryptionKeys: keys });
    const first = open(keyPrefix, [KEY_1]);
    first.addSerializedSession('s', sessionJson('s'));
    const held = first.get('s');
    // A newer copy under another key, as a host set up with other keys would store it.
    const elsewhere = open(`${keyPrefix}elsewhere:`, [KEY_2]);
    elsewhere.addSerializedSession('s', sessionJson('s'));
    await elsewhere.close();
    const key = sessionKey(keyPrefix, 's');
    setRawValue(key, Buffer.from(rawValue(sessionKey(`${keyPrefix}elsewhere:`, 's')), 'latin1'));
    redis.cli('HINCRBY', `${key.slice(0, -'session:s'.length)}versions`, 's', '5');
    const stored = rawValue(key);

    held.cookies.setByServer('https://mail.example.com/', ['late=1; Path=/']);
    await first.writeChanges();
    await first.whenWritten();
    expect(rawValue(key)).toBe(stored);
    expect(first.logger.lines.error.join('\n')).toMatch(
      /cannot write s yet, keeping it in memory: ERR_SESSION_UNDECRYPTABLE/,
    );
    expect(first.stats().unwritten).toBe(1);
  });
});
