'use strict';

// What only the Redis store does, against a real redis-server (see redis-server.js).
const { execFile, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { RammerheadSessionRedisStore } = require('..');
const h = require('./helpers');
const { RedisServer, sessionKey } = require('./redis-server');
const HammerheadSession = require('../demo/hammerhead-session');

const GOOD_JSON = fs.readFileSync(
  path.join(h.GOOD, `${h.GOOD_IDS.cookiesAndLocalStorage}.rhfsession`),
  'utf8',
);

let redis;
let prefixes = 0;
let opened = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(() => redis.close());
afterEach(async () => {
  // A test may leave the server stopped; the next one needs it.
  if (!redis.child) await redis.restart();
  for (const store of opened) {
    try {
      store.close();
    } catch {
      // what a test left unsaved on purpose
    }
  }
  opened = [];
});

/** A store on the test server under a prefix of its own (or the one given). */
function open(options = {}) {
  const store = new RammerheadSessionRedisStore({
    redisUrl: redis.url,
    keyPrefix: `t${++prefixes}:`,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    logger: h.recordingLogger(),
    commandTimeout: 300,
    connectTimeout: 300,
    ...options,
  });
  opened.push(store);
  return store;
}

/** The URL of the test server as a user the ACL forbids to publish (or subscribe). */
function unannouncedUrl() {
  redis.cli('ACL', 'SETUSER', 'nopublish', 'on', '>secret', '~*', '+@all', 'resetchannels');
  return redis.url.replace('redis://', 'redis://nopublish:secret@');
}

/**
 * Stores `ids` with `a`, then has a store that cannot announce its writes set the cookie
 * `fromB=<id>` on each of `changed` and store it: `a` learns of them only by checking its
 * versions again.
 */
async function changedUnannounced(a, ids, changed) {
  const b = open({ keyPrefix: a.keyPrefix, redisUrl: unannouncedUrl() });
  // Subscribed before it holds anything: a subscription checks every held version again, and
  // that check, still running when B changes them, would find B's change.
  await h.until(() => a.stats().subscribed);
  for (const id of ids) a.addSerializedSession(id, GOOD_JSON);
  for (const id of changed) setCookie(b.get(id), `fromB=${id}; Path=/`);
  await b.writeChanges();
  await b.whenWritten();
}

const stored = (store, id) => redis.cli('GET', sessionKey(store.keyPrefix, id));

/** The value of the cookie `key` in a serialized session; undefined when it has none. */
function cookieIn(json, key) {
  const { cookies } = JSON.parse(JSON.parse(json).serializedCookieJar);
  return cookies.find((cookie) => cookie.key === key)?.value;
}

/** A cookie set as a site's response would set it. */
function setCookie(session, cookie) {
  session.cookies.setByServer('http://site.test/', [cookie]);
}

describe('options', () => {
  test('rammerhead’s FileCache options are accepted; saveDirectory is ignored, said at debug level', () => {
    const store = open({
      saveDirectory: '/nonexistent/sessions',
      cacheTimeout: 1000 * 60 * 20,
      cacheCheckInterval: 1000 * 60 * 10,
      deleteUnused: true,
      deleteCorruptedSessions: true,
    });
    expect(store.logger.lines.debug.join('\n')).toContain('saveDirectory');
    expect(store.keyPrefix).toMatch(/^t\d+:$/);
    expect(store.writeInterval).toBe(1000);
    expect(store.syncEachRequest).toBe(true);
    expect(store.syncTimeout).toBe(25);
  });

  test('the URL defaults to REDIS_URL, and its password is never shown', () => {
    const previous = process.env.REDIS_URL;
    process.env.REDIS_URL = redis.url.replace('redis://', 'redis://:secret@');
    try {
      const store = open({ redisUrl: undefined });
      expect(store.redisUrl).toContain(`:${redis.port}`);
      expect(store.redisUrl).not.toContain('secret');
    } finally {
      if (previous === undefined) delete process.env.REDIS_URL;
      else process.env.REDIS_URL = previous;
    }
  });

  test('a URL that cannot be parsed is a TypeError with a code', () => {
    const error = h.expectTypeError(() => open({ redisUrl: 'http://nope' }));
    expect(error.code).toBe('ERR_INVALID_REDIS_URL');
    h.expectTypeError(() => open({ keyPrefix: '' }), 'keyPrefix');
    h.expectTypeError(() => open({ commandTimeout: 0 }), 'commandTimeout');
    h.expectTypeError(() => open({ syncTimeout: -1 }), 'syncTimeout');
    h.expectTypeError(() => open({ syncEachRequest: 'yes' }), 'syncEachRequest');
  });
});

describe('what Redis holds', () => {
  test('the stored value is exactly serializeSession(), and addSerializedSession stores before returning', () => {
    const store = open();
    store.addSerializedSession('imported', GOOD_JSON);
    expect(stored(store, 'imported')).toBe(GOOD_JSON);
    const session = store.get('imported');
    expect(session.serializeSession()).not.toBe(GOOD_JSON); // lastUsed moved
  });

  test('a user the ACL forbids to publish still stores and deletes; only announcements are lost', async () => {
    const store = open({ redisUrl: unannouncedUrl() });
    store.addSerializedSession('acl', GOOD_JSON);
    expect(stored(store, 'acl')).toBe(GOOD_JSON);
    expect(store.delete('acl')).toBe(true);
    expect(stored(store, 'acl')).toBe('');
    await h.until(() => store.logger.lines.warn.join('\n').includes('cannot subscribe'));
  });

  test('after a lost subscription every held session is checked again, however many are held', async () => {
    const a = open();
    const ids = Array.from({ length: 600 }, (_, i) => `many${i}`);
    const late = ids.slice(-3);
    await changedUnannounced(a, ids, late);
    const seenByA = () =>
      late.filter((id) => a.get(id, false).serializeSession().includes('fromB'));
    expect(seenByA()).toEqual([]);
    redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await h.until(() => seenByA().length === late.length);
    expect(stored(a, late[0])).toContain('fromB');
  });

  test('a session deleted elsewhere unannounced leaves memory once the versions are checked again', async () => {
    const a = open();
    const ids = ['kept1', 'gone', 'kept2'];
    await changedUnannounced(a, ids, ['kept1', 'kept2']);
    const b = open({ keyPrefix: a.keyPrefix, redisUrl: unannouncedUrl() });
    expect(b.delete('gone')).toBe(true);
    expect(a.sessions.has('gone')).toBe(true);
    redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await h.until(() => !a.sessions.has('gone'));
    // The copies fetched with it are taken in too, and nothing is fetched again.
    await h.until(() => a.stats().refreshed === 2);
    for (const id of ['kept1', 'kept2']) {
      expect(cookieIn(a.get(id, false).serializeSession(), 'fromB')).toBe(id);
    }
    expect(a.logger.lines.warn.join('\n')).not.toContain('cannot fetch');
    expect(a.get('gone')).toBeUndefined();
  });

  test('copies changed elsewhere are taken in a slice at a time', async () => {
    const a = open();
    const ids = Array.from({ length: 300 }, (_, i) => `sliced${i}`);
    // Unannounced, the changes are all found by one check: batches of 256 newer copies.
    await changedUnannounced(a, ids, ids);
    const largest = await h.largestMovePerTurn(
      () => a.stats().refreshed,
      async () => {
        redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
        await h.until(() => a.stats().refreshed === ids.length);
      },
    );
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThanOrEqual(16);
    for (const id of ids) expect(cookieIn(a.get(id, false).serializeSession(), 'fromB')).toBe(id);
  });

  test('cookies changed on many held sessions at once are written a slice at a time', async () => {
    // No round: every write here is a prompt one.
    const store = open({ writeInterval: 2 ** 31 - 1 });
    const ids = Array.from({ length: 300 }, (_, i) => `prompt${i}`);
    for (const id of ids) store.addSerializedSession(id, GOOD_JSON);
    const queueWrites = jest.spyOn(store.backend, 'queueWrites');
    const handedOver = () =>
      queueWrites.mock.calls.reduce((sum, [queued]) => sum + queued.length, 0);
    const largest = await h.largestMovePerTurn(handedOver, async () => {
      for (const id of ids) setCookie(store.get(id), `prompt=${id}; Path=/`);
      await h.until(() => handedOver() >= ids.length);
      await store.whenWritten();
    });
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThanOrEqual(64);
    for (const id of ids) expect(cookieIn(stored(store, id), 'prompt')).toBe(id);
  });

  test('add is visible to another store once whenWritten() resolves', async () => {
    const a = open();
    const b = open({ keyPrefix: a.keyPrefix });
    const session = a.add('fresh');
    await a.whenWritten();
    expect(JSON.parse(stored(a, 'fresh')).data.createdAt).toBe(session.createdAt);
    expect(b.get('fresh')).toBeDefined();
    expect(b.keys()).toEqual(['fresh']);
  });

  test('keys() reads the index, never scanning the database', () => {
    const store = open();
    for (let i = 0; i < 50; i++) store.addSerializedSession(`s${i}`, GOOD_JSON);
    redis.cli('CONFIG', 'RESETSTAT');
    expect(store.keys()).toHaveLength(50);
    const stats = redis.cli('INFO', 'commandstats');
    expect(stats).not.toMatch(/cmdstat_(scan|keys):/);
  });

  test('a changed session is stored within a round; an unchanged one is not written', async () => {
    const store = open();
    store.addSerializedSession('changed', GOOD_JSON);
    store.addSerializedSession('unchanged', GOOD_JSON);
    setCookie(store.get('changed'), 'fresh=1; Path=/');
    store.get('unchanged');
    await store.writeChanges();
    await store.whenWritten();
    expect(stored(store, 'changed')).toContain('fresh');
    expect(stored(store, 'unchanged')).toBe(GOOD_JSON);
    expect(store.stats()).toMatchObject({ unwritten: 0, writesPending: 0 });
  });

  test('an unchanged session leaves memory without a write; a changed one is written first', async () => {
    const store = open({ cacheTimeout: 1 });
    store.addSerializedSession('unchanged', GOOD_JSON);
    store.addSerializedSession('changed', GOOD_JSON);
    store.get('unchanged');
    setCookie(store.get('changed'), 'late=1; Path=/');
    const later = Date.now() + 1000;
    jest.spyOn(Date, 'now').mockImplementation(() => later);
    try {
      await store.checkCache();
    } finally {
      Date.now.mockRestore();
    }
    expect(store.cachedSessions.size).toBe(0);
    expect(stored(store, 'unchanged')).toBe(GOOD_JSON);
    expect(stored(store, 'changed')).toContain('late');
  });

  test('close() stores what changed and leaves the rest as stored', () => {
    const store = open();
    store.addSerializedSession('a', GOOD_JSON);
    store.addSerializedSession('b', GOOD_JSON);
    setCookie(store.get('a'), 'closing=1; Path=/');
    store.get('b');
    store.close();
    expect(stored(store, 'a')).toContain('closing');
    expect(stored(store, 'b')).toBe(GOOD_JSON);
  });

  test('a session deleted by another store leaves this one’s memory at the next round', async () => {
    const a = open();
    const b = open({ keyPrefix: a.keyPrefix });
    a.addSerializedSession('shared', GOOD_JSON);
    expect(b.get('shared')).toBeDefined();
    expect(a.delete('shared')).toBe(true);
    await b.writeChanges();
    expect(b.cachedSessions.has('shared')).toBe(false);
    expect(b.get('shared')).toBeUndefined();
  });

  test('a corrupt value is not a session, and is deleted only as found', () => {
    const store = open();
    redis.cli('SET', sessionKey(store.keyPrefix, 'bad'), '{"data":1}');
    expect(store.has('bad')).toBe(false);
    expect(store.get('bad')).toBeUndefined();
    expect(stored(store, 'bad')).toBe('');
    expect(store.logger.lines.warn.join('\n')).toContain('corrupt');
  });
});

describe('expiry', () => {
  test('staleTimeout becomes key expiry, which stores without a policy (cluster workers) follow', async () => {
    const master = open({
      staleCleanupOptions: { staleTimeout: 400, maxToLive: null, staleCheckInterval: 1000 },
    });
    await master.writeChanges();
    const worker = open({ keyPrefix: master.keyPrefix, staleCleanupOptions: null });
    worker.addSerializedSession('w', GOOD_JSON);
    const ttl = Number(redis.cli('PTTL', sessionKey(master.keyPrefix, 'w')));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(400);
    await h.until(() => redis.cli('EXISTS', sessionKey(master.keyPrefix, 'w')) === '0');
    worker.cachedSessions.clear();
    const other = open({ keyPrefix: master.keyPrefix });
    expect(other.get('w')).toBeUndefined();
    expect(other.keys()).toEqual([]);
  });

  test('a session in use has its expiry refreshed in rounds, not per request', async () => {
    const store = open({
      staleCleanupOptions: { staleTimeout: 60000, maxToLive: null, staleCheckInterval: 100000 },
    });
    await store.writeChanges();
    store.addSerializedSession('used', GOOD_JSON);
    store.get('used'); // loaded: one round trip
    redis.cli('PEXPIRE', sessionKey(store.keyPrefix, 'used'), '30000');
    redis.cli('CONFIG', 'RESETSTAT');
    for (let i = 0; i < 100; i++) store.get('used');
    expect(redis.cli('INFO', 'commandstats')).not.toMatch(/cmdstat_(evalsha|pexpire)/);
    await store.writeChanges();
    expect(Number(redis.cli('PTTL', sessionKey(store.keyPrefix, 'used')))).toBeGreaterThan(30000);
  });
});

describe('when Redis is down', () => {
  test('held sessions keep working, others are undefined, nothing throws, changes are stored once it is back', async () => {
    const store = open();
    store.addSerializedSession('held', GOOD_JSON);
    const held = store.get('held');
    // Stored, but not held by this store.
    open({ keyPrefix: store.keyPrefix }).addSerializedSession('elsewhere', GOOD_JSON);
    await redis.stop();
    expect(store.get('held')).toBe(held);
    expect(store.get('elsewhere')).toBeUndefined();
    expect(store.stats().available).toBe(false);
    expect(store.get('elsewhere')).toBeUndefined();
    expect(store.has('elsewhere')).toBe(false);
    expect(store.delete('elsewhere')).toBe(false);
    setCookie(held, 'offline=1; Path=/');
    expect(() => store.addSerializedSession('new', GOOD_JSON)).not.toThrow();
    expect(store.stats().keptInMemory).toBe(1);
    expect(store.get('new')).toBeDefined();
    await store.writeChanges();

    await redis.restart();
    await h.until(() => store.stats().available);
    await store.writeChanges();
    await store.whenWritten();
    // Restarted empty: every session held here is written back, with its changes.
    expect(stored(store, 'held')).toContain('offline');
    expect(JSON.parse(stored(store, 'new')).data).toEqual(
      expect.objectContaining({ createdAt: JSON.parse(GOOD_JSON).data.createdAt }),
    );
    expect(store.stats().unwritten).toBe(0);
  });

  test('a session just imported is served by its process while Redis is down, and written back after a loss', async () => {
    const store = open();
    store.addSerializedSession('fresh', GOOD_JSON);
    await redis.stop();
    expect(store.get('fresh')).toBeDefined();
    await redis.restart();
    // The first round after the restart finds the old connection broken; a later one, on a
    // new connection, sees the new data set.
    await h.until(async () => {
      await store.writeChanges();
      await store.whenWritten();
      return stored(store, 'fresh') !== '';
    });
  });

  test('a store starts while Redis is down, and works once it is up', async () => {
    await redis.stop();
    const store = open();
    expect(store.stats().available).toBe(false);
    expect(store.get('x')).toBeUndefined();
    const session = store.add('early');
    await redis.restart();
    await h.until(() => store.stats().available);
    await store.writeChanges();
    await store.whenWritten();
    expect(JSON.parse(stored(store, 'early')).data.createdAt).toBe(session.createdAt);
  });

  test('close() while Redis is down throws one error listing what it could not store', async () => {
    const store = open();
    store.addSerializedSession('a', GOOD_JSON);
    setCookie(store.get('a'), 'unsaved=1; Path=/');
    await redis.stop();
    store.get('missing');
    let error;
    try {
      store.close();
    } catch (e) {
      error = e;
    }
    expect(error.code).toBe('ERR_SESSIONS_NOT_SAVED');
    expect(error.failures.map((f) => [f.id, f.code])).toEqual([['a', 'ERR_REDIS_UNAVAILABLE']]);
  });

  test('with persistence, a restart loses nothing and rewrites nothing', async () => {
    const durable = await RedisServer.start({ persistence: true });
    try {
      const store = open({ redisUrl: durable.url });
      store.addSerializedSession('kept', GOOD_JSON);
      store.get('kept');
      await durable.restart();
      await h.until(() => {
        store.get('gone-' + Math.random()); // finds out that the connection dropped
        return store.stats().connects > 1 && store.stats().available;
      });
      await store.writeChanges();
      await store.whenWritten();
      expect(durable.cli('GET', sessionKey(store.keyPrefix, 'kept'))).toBe(GOOD_JSON);
      store.close();
      opened = opened.filter((s) => s !== store);
    } finally {
      await durable.close();
    }
  });
});

test('two processes on one Redis: one creates, the other serves at once', async () => {
  const store = open();
  const child = `
    const { RammerheadSessionRedisStore } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const store = new RammerheadSessionRedisStore({
      redisUrl: ${JSON.stringify(redis.url)}, keyPrefix: ${JSON.stringify(store.keyPrefix)},
      sessionClass: require(${JSON.stringify(path.join(__dirname, '..', 'demo', 'hammerhead-session'))}),
      staleCleanupOptions: null,
    });
    store.addSerializedSession('from-child', process.argv[1]);
    // Seen by the parent while this process still runs.
    process.stdout.write('stored\\n');
    process.stdin.once('data', () => { store.close(); process.exit(0); });
  `;
  const proc = execFile(process.execPath, ['-e', child, GOOD_JSON]);
  await new Promise((resolve) => proc.stdout.once('data', resolve));
  try {
    const session = store.get('from-child');
    expect(session).toBeDefined();
    expect(session.data.localStorage).toEqual(JSON.parse(GOOD_JSON).data.localStorage);
  } finally {
    proc.stdin.end('done\n');
    await new Promise((resolve) => proc.once('exit', resolve));
  }
});

// Writes and fetches whose outcome the store does not learn in time: a write still under way when
// the next is sent, one carried out whose reply came too late, a fetch that times out while the
// connection stays up.
const SITE = 'http://site.test/';
const cookiesOf = (session) => session.cookies.getClientString(SITE);
const LOGOUT = 'login=; Max-Age=0; Path=/';

/** What a store opened afresh on the prefix loads for `id`. */
function loadedElsewhere(keyPrefix, id) {
  const fresh = open({ keyPrefix });
  return cookiesOf(fresh.get(id));
}

/** A relay in front of the test server that holds replies back on demand (reply-gate.js). */
async function startGate() {
  const child = spawn(
    process.execPath,
    [path.join(__dirname, 'support', 'reply-gate.js'), redis.port],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = readline.createInterface({ input: child.stdout });
  const answers = [];
  const port = await new Promise((resolve) => lines.once('line', resolve));
  lines.on('line', () => answers.shift()());
  return {
    url: `redis://127.0.0.1:${port}`,
    tell: (command) =>
      new Promise((resolve) => {
        answers.push(resolve);
        child.stdin.write(`${command}\n`);
      }),
    stop: () => child.kill(),
  };
}

/** Until `store` hears other hosts and has checked what it held then: nothing waits. */
function settled(store) {
  return h.until(
    () => store.stats().subscribed && !store.remote.fetching && store.remote.unchecked === null,
  );
}

/** Runs `fn(gate, keyPrefix)` with a reply gate and a session `s` stored under the prefix. */
async function withGate(fn) {
  const seed = open();
  seed.addSerializedSession('s', GOOD_JSON);
  const gate = await startGate();
  try {
    await fn(gate, seed.keyPrefix);
  } finally {
    gate.stop();
  }
}

/** A store through a reply gate, holding `s` as loaded from the prefix `keyPrefix`. */
async function behindGate(gate, keyPrefix, options = {}) {
  const store = open({ keyPrefix, redisUrl: gate.url, writeInterval: 2 ** 31 - 1, ...options });
  const session = store.get('s');
  await settled(store);
  return [store, session];
}

const storedHas = (store, text) => stored(store, 's').includes(text);

/** Once Redis answers `store` again, runs rounds until every change is stored and `text` is not. */
async function roundsUntilGone(store, text) {
  await h.until(() => store.backend.available, { timeout: 5000 });
  await h.until(async () => {
    await store.writeChanges();
    await store.whenWritten();
    return store.stats().unwritten === 0 && !storedHas(store, text);
  });
}

describe('when replies come late', () => {
  test('a cookie deleted while the write that set it is under way stays deleted through close()', async () => {
    await withGate(async (gate, keyPrefix) => {
      const [a, session] = await behindGate(gate, keyPrefix);
      await gate.tell('hold');
      // Carried out by Redis; its reply is on its way when the logout comes.
      setCookie(session, 'login=secret; Path=/');
      await h.until(() => storedHas(a, 'login'));
      session.cookies.setByServer(SITE, [LOGOUT, 'bye=1; Path=/']);
      // Read, as the next request does, which takes the expired cookie out of the jar.
      expect(cookiesOf(session)).toBe('bye=1');
      await gate.tell('release-after 100');
      a.close();
      expect(loadedElsewhere(a.keyPrefix, 's')).toBe('bye=1');
    });
  });

  test('a cookie set by a write whose reply was lost, then deleted, is deleted for every host', async () => {
    await withGate(async (gate, keyPrefix) => {
      const [a, session] = await behindGate(gate, keyPrefix, { commandTimeout: 100 });
      await gate.tell('hold');
      // Stored by Redis, but the reply is held until the store has given up on it.
      setCookie(session, 'login=secret; Path=/');
      await h.until(() => storedHas(a, 'login'));
      await h.until(() => !a.backend.available, { timeout: 5000 });
      await gate.tell('release');
      session.cookies.setByServer(SITE, [LOGOUT]);
      expect(cookiesOf(session)).toBe('');
      await roundsUntilGone(a, 'login');
      expect(cookiesOf(a.get('s'))).toBe('');
      expect(loadedElsewhere(a.keyPrefix, 's')).toBe('');
    });
  });

  test('a close() whose reply came too late, then a logout, then close() again: the logout is stored', async () => {
    await withGate(async (gate, keyPrefix) => {
      const [a, session] = await behindGate(gate, keyPrefix, { commandTimeout: 100 });
      session.data.login = 'logged-in-43';
      await gate.tell('hold');
      // Stored by Redis, but close() gives up waiting and keeps the session.
      expect(() => a.close()).toThrow(expect.objectContaining({ code: 'ERR_SESSIONS_NOT_SAVED' }));
      expect(storedHas(a, 'logged-in-43')).toBe(true);
      await gate.tell('release');
      delete session.data.login;
      await h.until(() => a.backend.available, { timeout: 5000 });
      a.close();
      expect(storedHas(a, 'logged-in-43')).toBe(false);
      expect(open({ keyPrefix: a.keyPrefix }).get('s').data.login).toBeUndefined();
    });
  });

  test('a field stored by a cache check whose reply was lost, then deleted, is deleted for every host', async () => {
    await withGate(async (gate, keyPrefix) => {
      const [a, session] = await behindGate(gate, keyPrefix, { commandTimeout: 100 });
      session.data.login = 'logged-in-42';
      session.lastUsed = Date.now() - a.cacheTimeout - 1000;
      await gate.tell('hold');
      // Idle: written before it leaves memory; stored, but the reply comes too late.
      const check = a.checkCache();
      await h.until(() => storedHas(a, 'logged-in-42'));
      await h.until(() => !a.backend.available, { timeout: 5000 });
      await gate.tell('release');
      await check;
      expect(a.get('s')).toBe(session);
      delete session.data.login;
      await roundsUntilGone(a, 'logged-in-42');
      expect(open({ keyPrefix: a.keyPrefix }).get('s').data.login).toBeUndefined();
    });
  });

  test('a change announced while the fetch of it times out, the connection staying up, is taken in', async () => {
    const a = open({ commandTimeout: 100 });
    const b = open({ keyPrefix: a.keyPrefix });
    a.addSerializedSession('s', GOOD_JSON);
    a.get('s');
    const connects = a.backend.connects;
    // Writes queued before the fetch: its reply comes long after the store stopped waiting.
    const big = JSON.parse(GOOD_JSON);
    big.data.fill = 'x'.repeat(50_000);
    const ids = Array.from({ length: 3000 }, (_, i) => `bulk${i}`);
    const json = JSON.stringify(big);
    a.backend.queueWrites(
      ids.map((id) => ({ id, json, base: null })),
      () => {},
    );
    setCookie(b.get('s'), 'fromB=1; Path=/');
    await b.writeChanges();
    await b.whenWritten();
    await h.until(() => a.logger.lines.warn.some((line) => line.includes('cannot fetch')));
    await h.until(() => cookiesOf(a.get('s', false)).includes('fromB=1'));
    expect(a.backend.connects).toBe(connects);
  });
});
