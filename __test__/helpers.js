'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const { RammerheadSessionFileCache } = require('..');
const HammerheadSession = require('../demo/hammerhead-session');

const FIXTURES = path.join(__dirname, 'fixtures');
const GOOD = path.join(FIXTURES, 'rammerhead-1.2.64');
const BAD = path.join(FIXTURES, 'bad');
const GOOD_IDS = JSON.parse(fs.readFileSync(path.join(GOOD, 'ids.json'), 'utf8'));

/** Ids that look odd but can name a session file: every store must treat them as any other. */
const ODD_BUT_VALID_IDS = [
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
  'victim\uFFFD',
];

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'rh-store-'));
}

/** A `sessions` directory inside a fresh temporary root, so what lands beside it can be seen. */
function sessionsDirectory() {
  const root = tempDir();
  const saveDirectory = path.join(root, 'sessions');
  fs.mkdirSync(saveDirectory);
  return { root, saveDirectory };
}

/** Copies a fixture folder (files and directories) into a fresh temporary directory. */
function copyFixtures(from) {
  const dir = tempDir();
  fs.cpSync(from, dir, { recursive: true });
  return dir;
}

/** Names in a sessions directory other than the store's own temporary files. */
function listed(dir) {
  return fs
    .readdirSync(dir)
    .filter((name) => !name.startsWith('.rhfs-'))
    .sort();
}

function badIds() {
  return fs
    .readdirSync(BAD)
    .filter((name) => name.endsWith('.rhfsession'))
    .map((name) => name.slice(0, -'.rhfsession'.length));
}

/** A logger that records what it is told. */
function recordingLogger() {
  const lines = { debug: [], info: [], warn: [], error: [], traffic: [] };
  const logger = { lines };
  for (const level of Object.keys(lines)) logger[level] = (message) => lines[level].push(message);
  return logger;
}

/**
 * A FileCache on `saveDirectory` with the project's session class, no stale cleanup and a
 * recording logger (`store.logger.lines`), unless `options` say otherwise.
 */
function openFileCache(saveDirectory, options = {}) {
  return new RammerheadSessionFileCache({
    saveDirectory,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    logger: recordingLogger(),
    ...options,
  });
}

/** A loopback port no one listens on now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A random number generator from a seed (mulberry32): the same numbers on every run, so a
 * failure can be replayed with the seed its test prints.
 */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Polls until `check()` is truthy; fails after `timeout` ms. */
async function until(check, { timeout = 10000, every = 5 } = {}) {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - start > timeout)
      throw new Error(`condition not met in ${timeout} ms: ${check}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

/**
 * Runs `run()` while a callback on every turn of the event loop records by how much `count()`
 * moved since the previous turn; returns the largest such move.
 */
async function largestMovePerTurn(count, run) {
  let last = count();
  let largest = 0;
  let running = true;
  const tick = () => {
    const now = count();
    largest = Math.max(largest, Math.abs(now - last));
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  await run();
  running = false;
  tick();
  return largest;
}

/**
 * Asserts that `fn` throws a TypeError. By name, not instanceof: errors the addon throws are
 * made in Node's main realm, and jest runs tests in a realm of its own.
 */
function expectTypeError(fn, text) {
  let error;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  if (!error || error.name !== 'TypeError') {
    throw new Error(`expected a TypeError from ${fn}, got ${error}`);
  }
  if (text && !error.message.includes(text)) {
    throw new Error(`expected "${text}" in "${error.message}"`);
  }
  return error;
}

/** GETs a URL as a browser asking for a page would; resolves with status and body. */
function fetchText(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { accept: 'text/html,*/*' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      })
      .on('error', reject);
  });
}

/**
 * Makes a directory refuse new files and deletions, for this process too: `chattr +i` when
 * running as root (root ignores permission bits), mode 0500 otherwise. Throws if neither works,
 * so a test never passes without the failure it is about.
 */
function lockDirectory(dir) {
  if (process.getuid() === 0) execFileSync('chattr', ['+i', dir]);
  else fs.chmodSync(dir, 0o500);
  const probe = path.join(dir, 'lock-probe');
  try {
    fs.writeFileSync(probe, '');
  } catch (error) {
    return error.code;
  }
  fs.rmSync(probe);
  unlockDirectory(dir);
  throw new Error(`cannot make ${dir} unwritable on this system`);
}

function unlockDirectory(dir) {
  if (process.getuid() === 0) execFileSync('chattr', ['-i', dir]);
  else fs.chmodSync(dir, 0o700);
}

/**
 * Asks for a WebSocket at `url` as a browser does; resolves with the status of the answer, or
 * 'closed' when the server closed the connection without one.
 */
function webSocketHandshake(url) {
  return new Promise((resolve) => {
    const request = http.request(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
      },
    });
    request.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    request.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    request.on('error', () => resolve('closed'));
    request.end();
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = {
  FIXTURES,
  freePort,
  GOOD,
  BAD,
  GOOD_IDS,
  tempDir,
  copyFixtures,
  badIds,
  listed,
  recordingLogger,
  until,
  largestMovePerTurn,
  sleep,
  fetchText,
  webSocketHandshake,
  expectTypeError,
  lockDirectory,
  unlockDirectory,
  seededRandom,
  openFileCache,
  sessionsDirectory,
  ODD_BUT_VALID_IDS,
};
