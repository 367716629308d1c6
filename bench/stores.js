'use strict';

// What every part of the benchmark shares: the session class, the ids, the session template,
// the loggers and the stores under test, set up the same way in the main process and in its
// children.
const fs = require('fs');
const os = require('os');
const path = require('path');
const {
  RammerheadSessionFileCache,
  RammerheadSessionMemoryStore,
  RammerheadSessionRedisStore,
} = require('..');

const RAMMERHEAD_DIR = process.env.RAMMERHEAD_DIR;
const DAY = 24 * 60 * 60 * 1000;
const NEVER = 2 ** 31 - 1;

const sessionClassPath = RAMMERHEAD_DIR
  ? path.join(RAMMERHEAD_DIR, 'src', 'classes', 'RammerheadSession')
  : path.join(__dirname, '..', 'demo', 'hammerhead-session');
const sessionClass = require(sessionClassPath);
const original = RAMMERHEAD_DIR && {
  FileCache: require(path.join(RAMMERHEAD_DIR, 'src', 'classes', 'RammerheadSessionFileCache')),
  MemoryStore: require(path.join(RAMMERHEAD_DIR, 'src', 'classes', 'RammerheadMemoryStore')),
};

/** The session every store is measured with: one written by rammerhead 1.2.64. */
const template = fs.readFileSync(
  path.join(
    __dirname,
    '..',
    '__test__',
    'fixtures',
    'rammerhead-1.2.64',
    'f165f28b1c874bc6b7a689af41b58183.rhfsession',
  ),
  'utf8',
);

/** A session of about `bytes` bytes: the fixture with localStorage filled up to that size. */
function sessionOfSize(bytes) {
  const session = JSON.parse(template);
  const padding = Math.max(0, bytes - template.length - 64);
  session.data.localStorage = { 'http://bench.test': { data: { fill: 'x'.repeat(padding) } } };
  return JSON.stringify(session);
}

/**
 * A session as users leave them: `cookies` cookies of random values on a few sites (random
 * tokens do not compress), and `items` entries of a web app's synced localStorage (repetitive
 * JSON, which does). Deterministic, so every run measures the same bytes.
 */
function realisticSession({ cookies, items }) {
  const session = sessionClass.DeserializeSession('bench', template);
  let seed = 7;
  const random = () => {
    seed = (seed * 48271) % 2147483647;
    return seed;
  };
  const token = (length) =>
    Array.from(
      { length },
      () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[random() % 62],
    ).join('');
  for (let i = 0; i < cookies; i++) {
    const site = `https://www.site${i % 8}.example/`;
    session.cookies.setByServer(site, [`c${i}=${token(32)}; Path=/; Max-Age=86400; Secure`]);
  }
  const data = {};
  for (let i = 0; i < items; i++) {
    data[`app:item:${i}`] = JSON.stringify({
      id: i,
      title: `Item number ${i}`,
      tags: ['inbox', 'starred', 'read'].slice(0, 1 + (i % 3)),
      updatedAt: 1700000000000 + i * 61000,
      author: { id: i % 17, name: `User ${i % 17}` },
    });
  }
  session.data.localStorage = { 'https://app.example': { data } };
  return session.serializeSession();
}

/** A new empty directory for one phase's session files. */
function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'rh-bench-'));
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Writes a file per id in `dir`, as another process would, each last used `age` ms ago. */
function writeSessionFiles(dir, ids, age) {
  const data = JSON.parse(template);
  const at = Date.now() - age;
  data.data.createdAt = at;
  data.data.lastUsed = at;
  const text = JSON.stringify(data);
  for (const id of ids) fs.writeFileSync(path.join(dir, `${id}.rhfsession`), text);
}

/** A new directory with a file per id, each last used `age` ms ago. */
function sessionDir(ids, age) {
  const dir = tempDir();
  writeSessionFiles(dir, ids, age);
  return dir;
}

function sessionIds(n) {
  return Array.from({ length: n }, (_, i) => `bench${String(i).padStart(8, '0')}`);
}

const quiet = { debug() {}, info() {}, warn() {}, error() {}, traffic() {} };
/**
 * The logger every store gets: with RAMMERHEAD_DIR, rammerhead's own at the level its config
 * sets outside development ('info'), as its server passes it to the store, output discarded.
 */
const logger = RAMMERHEAD_DIR
  ? new (require(path.join(RAMMERHEAD_DIR, 'src', 'classes', 'RammerheadLogging')))({
      logLevel: 'info',
      logger: () => {},
    })
  : quiet;

function ourFileCache(saveDirectory, options = {}) {
  return new RammerheadSessionFileCache({
    saveDirectory,
    sessionClass,
    logger,
    staleCleanupOptions: null,
    cacheCheckInterval: NEVER,
    ...options,
  });
}

function ourRedisStore(redisUrl, keyPrefix, options = {}) {
  return new RammerheadSessionRedisStore({
    redisUrl,
    keyPrefix,
    sessionClass,
    logger,
    staleCleanupOptions: null,
    cacheCheckInterval: NEVER,
    writeInterval: NEVER,
    ...options,
  });
}

function ourMemoryStore() {
  return new RammerheadSessionMemoryStore({ sessionClass, logger });
}

function originalFileCache(saveDirectory, options = {}) {
  return new original.FileCache({
    saveDirectory,
    logger,
    staleCleanupOptions: null,
    cacheCheckInterval: NEVER,
    ...options,
  });
}

function originalMemoryStore() {
  return new original.MemoryStore({ logger });
}

module.exports = {
  RAMMERHEAD_DIR,
  DAY,
  NEVER,
  sessionClassPath,
  sessionClass,
  original,
  sessionIds,
  sessionOfSize,
  realisticSession,
  template,
  tempDir,
  removeDir,
  writeSessionFiles,
  sessionDir,
  quiet,
  logger,
  ourFileCache,
  ourMemoryStore,
  ourRedisStore,
  originalFileCache,
  originalMemoryStore,
};
