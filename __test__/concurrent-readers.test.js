'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { RammerheadSessionFileCache } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const READER = path.join(__dirname, 'support', 'reader-loop.js');
const COUNT = 5;
const RUN_MS = 4000;

function runReader(dir) {
  const child = spawn(process.execPath, [READER, dir, String(COUNT), String(RUN_MS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => (out += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`reader exited with ${code}`));
    });
  });
}

/** A payload whose size differs per session and per round, from a few bytes to about 24 KB. */
function payload(index, round) {
  return 'x'.repeat(10 + ((index * 7919 + round * 104729) % 24000));
}

test('while one process rewrites sessions, another never reads a different or torn session', async () => {
  const dir = h.tempDir();
  const ids = Array.from({ length: COUNT }, (_, i) => `u${i}`);
  const writer = new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    cacheTimeout: 1,
    cacheCheckInterval: 2 ** 31 - 1,
  });
  for (const id of ids) {
    const session = new HammerheadSession({ id });
    session.data.owner = id;
    writer.addSerializedSession(id, session.serializeSession());
  }
  const reader = runReader(dir);
  let lost = 0;
  let foreign = 0;
  let rounds = 0;
  const end = Date.now() + RUN_MS;
  while (Date.now() < end) {
    ids.forEach((id, index) => {
      const session = writer.get(id);
      if (session === undefined) {
        lost++;
        return;
      }
      if (session.data.owner !== id) foreign++;
      session.data.owner = id;
      session.data.payload = payload(index, rounds);
    });
    await h.sleep(2);
    await writer.checkCache();
    rounds++;
  }
  const seen = await reader;
  writer.close();

  expect(rounds).toBeGreaterThan(20);
  expect(seen.rounds).toBeGreaterThan(20);
  expect(seen).toMatchObject({
    foreign: 0,
    missing: 0,
    plainForeign: 0,
    plainBad: 0,
    warnings: [],
  });
  expect({ lost, foreign }).toEqual({ lost: 0, foreign: 0 });
  for (const id of ids) {
    const file = JSON.parse(fs.readFileSync(path.join(dir, `${id}.rhfsession`), 'utf8'));
    expect(file.data.owner).toBe(id);
  }
});
