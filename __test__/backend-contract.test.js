// @ts-check
'use strict';

// The backend contract (lib/backends/contract.d.ts), run against every backend. This file is
// type-checked against the contract by `npm run lint`, so it uses only what the contract says.
const { describe, test, expect, beforeAll, afterAll, afterEach } = require('@jest/globals');
const fs = require('fs');
const path = require('path');
const { DirectoryBackend } = require('../lib/backends/directory-backend');
const { RedisBackend } = require('../lib/backends/redis-backend');
const h = require('./helpers');
const { RedisServer, sessionKey } = require('./redis-server');

/** @typedef {import('../lib/backends/contract').SessionBackend} SessionBackend */
/** @typedef {import('../lib/backends/contract').WriteItem} WriteItem */

const GOOD_JSON = fs.readFileSync(
  path.join(h.GOOD, `${h.GOOD_IDS.cookiesAndLocalStorage}.rhfsession`),
  'utf8',
);
const MAX_SESSION_BYTES = 1 << 20;
const DAY = 24 * 60 * 60 * 1000;

/** A session last used `age` ms ago, with a marker. */
function sessionJson(marker, age = 0) {
  const session = JSON.parse(GOOD_JSON);
  const at = Date.now() - age;
  session.data.createdAt = at;
  session.data.lastUsed = at;
  session.data.marker = marker;
  return JSON.stringify(session);
}

/** Stores a value that is not a session under `id`, as a crash or another program would. */
const PLANT = {
  directory: (where, id, text) => fs.writeFileSync(path.join(where, `${id}.rhfsession`), text),
  redis: (where, id, text) => redis.cli('SET', sessionKey(where, id), text),
};

let redis;
let prefixes = 0;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(() => redis.close());

/** @type {Array<[string, () => { backend: SessionBackend, where: string }, boolean]>} */
const BACKENDS = [
  [
    'directory',
    () => {
      const where = h.tempDir();
      const settings = { durable: false, maxSessionBytes: MAX_SESSION_BYTES };
      return { backend: new DirectoryBackend(where, settings), where };
    },
    false,
  ],
  [
    'redis',
    () => {
      const where = `backend${++prefixes}:`;
      const backend = new RedisBackend({
        redisUrl: redis.url,
        keyPrefix: where,
        commandTimeout: 2000,
        connectTimeout: 2000,
        maxSessionBytes: MAX_SESSION_BYTES,
      });
      return { backend, where };
    },
    true,
  ],
];

describe.each(BACKENDS)('%s backend', (kind, make, versioned) => {
  /** @type {SessionBackend[]} */
  let opened = [];
  function open() {
    const made = make();
    opened.push(made.backend);
    return made;
  }
  afterEach(() => {
    for (const backend of opened) backend.close();
    opened = [];
  });

  /** Queues the items and resolves with each one's settlement, in the order they settled. */
  function queued(backend, items) {
    return new Promise((resolve) => {
      const settled = [];
      backend.queueWrites(items, (id, failure, version) => {
        settled.push({ id, failure, version });
        if (settled.length === items.length) resolve(settled);
      });
    });
  }

  test('load gives back what import stored, with its version', () => {
    const { backend } = open();
    expect(backend.load('a')).toBeNull();
    const version = backend.import('a', GOOD_JSON);
    expect(versioned ? version > 0 : version === 0).toBe(true);
    const stored = { json: GOOD_JSON, version, encoding: 'plain' };
    const storedBytes = Buffer.byteLength(GOOD_JSON);
    expect(backend.load('a')).toEqual({ ...stored, storedBytes });
    expect(backend.ids()).toEqual(['a']);
    const later = sessionJson('later');
    const again = backend.import('a', later);
    if (versioned) expect(again).toBeGreaterThan(version);
    expect(backend.load('a').json).toBe(later);
  });

  test('loadLater resolves with what load returns, corrupt copies rejected with their code', async () => {
    const { backend, where } = open();
    await expect(backend.loadLater('a')).resolves.toBeNull();
    await expect(backend.loadLater('../x')).resolves.toBeNull();
    const version = backend.import('a', GOOD_JSON);
    await expect(backend.loadLater('a')).resolves.toEqual({
      json: GOOD_JSON,
      version,
      encoding: 'plain',
      storedBytes: Buffer.byteLength(GOOD_JSON),
    });
    PLANT[kind](where, 'bad', '{"data":');
    const failed = await backend.loadLater('bad').catch((error) => error);
    expect(typeof failed.message).toBe('string');
    expect(failed.code).toBe('ERR_CORRUPT_SESSION');
    // Remembered as found, as `load` does, for `removeCorrupt`.
    expect(backend.removeCorrupt('bad', null)).toBe(true);
  });

  test('import and checkImport refuse what load would not accept, and ids that cannot name a session', () => {
    const { backend } = open();
    const tooLarge = sessionJson('x'.repeat(MAX_SESSION_BYTES));
    for (const refuse of [
      (id, json) => backend.import(id, json),
      backend.checkImport.bind(backend),
    ]) {
      for (const bad of ['', '{"data":{}}', '[1]', '{"data":1,"serializedCookieJar":"{}"}']) {
        expect(() => refuse('a', bad)).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_SESSION' }),
        );
      }
      expect(() => refuse('a', tooLarge)).toThrow(
        expect.objectContaining({ code: 'ERR_SESSION_TOO_LARGE' }),
      );
      for (const id of ['', '..', 'a/b', 'x\uD800']) {
        h.expectTypeError(() => refuse(id, GOOD_JSON), 'session id');
      }
    }
    expect(() => backend.checkImport('a', GOOD_JSON)).not.toThrow();
    expect(backend.load('a')).toBeNull();
    for (const id of ['', '..', 'a/b', 'x\uD800']) {
      expect(backend.load(id)).toBeNull();
      expect(backend.remove(id)).toBe(false);
    }
    expect(backend.ids()).toEqual([]);
  });

  test('remove deletes the stored copy, once', () => {
    const { backend } = open();
    backend.import('a', GOOD_JSON);
    expect(backend.remove('a')).toBe(true);
    expect(backend.remove('a')).toBe(false);
    expect(backend.load('a')).toBeNull();
    expect(backend.ids()).toEqual([]);
  });

  test('queued writes are settled once each, in order, and stored', async () => {
    const { backend } = open();
    const reports = [];
    const stop = backend.onWritesReported(() => reports.push(backend.writesPending));
    /** @type {WriteItem[]} */
    const items = ['a', 'b', 'a'].map((id, i) => ({ id, json: sessionJson(i), base: null }));
    items[2].base = -1;
    const settling = queued(backend, items);
    expect(backend.isWriting('a')).toBe(true);
    expect(backend.writesPending).toBe(2);
    const settled = await settling;
    expect(settled.map((s) => s.id)).toEqual(['a', 'b', 'a']);
    expect(settled.every((s) => s.failure === undefined)).toBe(true);
    if (versioned) expect(settled[0].version).toBeGreaterThan(0);
    await backend.whenWritten();
    expect(backend.writesPending).toBe(0);
    expect(backend.isWriting('a')).toBe(false);
    expect(backend.load('a').json).toBe(items[2].json);
    expect(backend.load('b').json).toBe(items[1].json);
    expect(reports.length).toBeGreaterThan(0);
    stop();
    await queued(backend, [{ id: 'c', json: GOOD_JSON, base: null }]);
    const heard = reports.length;
    await backend.whenWritten();
    expect(reports.length).toBe(heard);
  });

  test('a queued write of an id that cannot name a session fails alone, at once', async () => {
    const { backend } = open();
    const settled = await queued(backend, [
      { id: 'a/b', json: GOOD_JSON, base: null },
      { id: 'ok', json: GOOD_JSON, base: null },
    ]);
    expect(settled[0]).toEqual(
      expect.objectContaining({
        id: 'a/b',
        failure: expect.objectContaining({ code: 'ERR_INVALID_SESSION_ID' }),
      }),
    );
    expect(settled[1].failure).toBeUndefined();
    expect(backend.ids()).toEqual(['ok']);
  });

  test('writeNow stores every item before it returns, one result each', () => {
    const { backend } = open();
    const results = backend.writeNow([
      { id: 'a', json: GOOD_JSON, base: null },
      { id: '..', json: GOOD_JSON, base: null },
      { id: 'b', json: GOOD_JSON, base: null },
    ]);
    expect(results).toHaveLength(3);
    expect(results[0].failure).toBeUndefined();
    expect(results[1].failure).toEqual(expect.objectContaining({ code: 'ERR_INVALID_SESSION_ID' }));
    expect(results[2].failure).toBeUndefined();
    expect(backend.ids().sort()).toEqual(['a', 'b']);
  });

  test('removeLater deletes in the background, after the writes asked for before', async () => {
    const { backend } = open();
    backend.import('a', GOOD_JSON);
    backend.import('b', GOOD_JSON);
    const failures = await backend.removeLater(['a', 'b', 'never', 'a/b']);
    expect(failures).toEqual([]);
    expect(backend.ids()).toEqual([]);
  });

  test('a corrupt copy is reported by its code and deleted only as it was found', () => {
    const { backend, where } = open();
    PLANT[kind](where, 'bad', '{"data":');
    expect(() => backend.load('bad')).toThrow(
      expect.objectContaining({ code: 'ERR_CORRUPT_SESSION' }),
    );
    // Stored anew by another process before the delete: kept.
    backend.import('bad', GOOD_JSON);
    expect(backend.removeCorrupt('bad', null)).toBe(false);
    expect(backend.load('bad').json).toBe(GOOD_JSON);

    // A copy the caller rejects after loading it goes, as it was loaded.
    PLANT[kind](where, 'odd', '{"data":{},"serializedCookieJar":"not a jar"}');
    const copy = backend.load('odd');
    backend.rejectLoaded('odd');
    expect(backend.removeCorrupt('odd', copy)).toBe(true);
    expect(backend.load('odd')).toBeNull();
  });

  test('sweep deletes what expired in the backend and reports it', async () => {
    const { backend } = open();
    backend.import('fresh', sessionJson('fresh'));
    const summary = await backend.sweep(Date.now(), { staleTimeout: DAY, maxToLive: null }, false);
    const { scanned, expired, removed, keptBusy, removedCorrupt } = summary;
    for (const count of [scanned, expired, removed, keptBusy, removedCorrupt]) {
      expect(typeof count).toBe('number');
    }
    expect(summary.failed).toEqual([]);
    expect(backend.ids()).toEqual(['fresh']);
    if (kind === 'directory') {
      backend.import('stale', sessionJson('stale', 2 * DAY));
      const swept = await backend.sweep(Date.now(), { staleTimeout: DAY, maxToLive: null }, false);
      expect(swept.removed).toBe(1);
      expect(backend.ids()).toEqual(['fresh']);
    }
  });

  test('stats and release take no session; close lets the backend go', () => {
    const { backend } = open();
    backend.import('a', GOOD_JSON);
    backend.release(['a', 'never', 'a/b']);
    expect(typeof backend.stats()).toBe('object');
    backend.close();
    if (versioned) {
      expect(() => backend.load('a')).toThrow(
        expect.objectContaining({ code: 'ERR_REDIS_UNAVAILABLE' }),
      );
    }
  });
});
