'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const json = new HammerheadSession({ id: 'template' }).serializeSession();

const fileCache = h.openFileCache;

function sessionPath(dir, id) {
  return path.join(dir, `${id}.rhfsession`);
}

// A FIFO blocks a plain open forever, so a regression shows as this test's timeout.
test('a FIFO named like a session is no session and never blocks', async () => {
  const dir = h.tempDir();
  execFileSync('mkfifo', [sessionPath(dir, 'victim')]);
  const store = fileCache(dir, { staleCleanupOptions: { staleTimeout: 1, maxToLive: 1 } });
  expect(store.has('victim')).toBe(false);
  expect(store.get('victim')).toBeUndefined();
  expect(store.keys()).toEqual([]);
  expect(store.logger.lines.warn.join('\n')).toMatch(/victim.*ERR_NOT_REGULAR_FILE.*FIFO/);
  await store.removeStaleSessions();
  expect(fs.statSync(sessionPath(dir, 'victim')).isFIFO()).toBe(true);
  store.addSerializedSession('other', json);
  expect(store.has('other')).toBe(true);
  store.close();
}, 10000);

test('symbolic links are never followed: not to a device, not to a session elsewhere', async () => {
  const dir = h.tempDir();
  const outside = h.tempDir();
  const secret = sessionPath(outside, 'secret');
  fs.writeFileSync(secret, json);
  fs.symlinkSync(secret, sessionPath(dir, 'victim'));
  fs.symlinkSync('/dev/zero', sessionPath(dir, 'zero'));
  const store = fileCache(dir, { staleCleanupOptions: { staleTimeout: 1, maxToLive: 1 } });
  for (const id of ['victim', 'zero']) {
    expect(store.has(id)).toBe(false);
    expect(store.get(id)).toBeUndefined();
  }
  expect(store.keys()).toEqual([]);
  const warnings = store.logger.lines.warn.join('\n');
  expect(warnings).toMatch(/victim.*ERR_NOT_REGULAR_FILE.*symbolic link/);
  expect(warnings).toMatch(/zero.*ERR_NOT_REGULAR_FILE.*symbolic link/);
  await store.removeStaleSessions();
  store.close();
  expect(fs.readFileSync(secret, 'utf8')).toBe(json);
  expect(fs.lstatSync(sessionPath(dir, 'victim')).isSymbolicLink()).toBe(true);
});

test('files over maxSessionBytes are not read, and not deleted as corrupt', () => {
  const dir = h.tempDir();
  const padded = new HammerheadSession({ id: 'big' });
  padded.data.pad = 'x'.repeat(4096);
  const big = padded.serializeSession();
  fs.writeFileSync(sessionPath(dir, 'big'), big);
  fs.writeFileSync(sessionPath(dir, 'fits'), json);
  const store = fileCache(dir, { maxSessionBytes: Buffer.byteLength(json) });
  expect(store.get('fits').id).toBe('fits');
  expect(store.has('big')).toBe(false);
  expect(store.get('big')).toBeUndefined();
  expect(store.logger.lines.warn.join('\n')).toMatch(/big.*ERR_SESSION_TOO_LARGE/);
  expect(fs.readFileSync(sessionPath(dir, 'big'), 'utf8')).toBe(big);
  store.close();
  expect(fileCache(dir).get('big').data.pad).toHaveLength(4096);
});

test('maxSessionBytes must be a whole number of bytes above 0', () => {
  const dir = h.tempDir();
  for (const maxSessionBytes of [0, -1, 1.5, '100', null, Infinity]) {
    h.expectTypeError(() => fileCache(dir, { maxSessionBytes }), 'maxSessionBytes');
  }
  expect(fileCache(dir).maxSessionBytes).toBe(64 * 1024 * 1024);
});
