'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { RammerheadSessionFileCache } = require('..');
const h = require('./helpers');
const HammerheadSession = require('../demo/hammerhead-session');

const WORKER = path.join(__dirname, 'support', 'flush-loop.js');
const KILLS = 20;
// Kill points are drawn from this seed, printed in the test's name: CRASH_SEED=<n> replays them.
const SEED = Number(process.env.CRASH_SEED || 20261125);
const random = h.seededRandom(SEED);

/** Starts a flushing process, kills it with SIGKILL at a drawn moment, returns its output. */
function runAndKill(dir, firstRound) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, dir, String(firstRound)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    let armed = false;
    // After one to three completed flushes, at a random point of the next ones.
    const afterFlushes = 1 + Math.floor(random() * 3);
    const delay = random() * 60;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (!armed && (output.match(/^flushed/gm) || []).length >= afterFlushes) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delay);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ output, signal }));
  });
}

function lastFlushed(output) {
  const rounds = [...output.matchAll(/^flushed (\d+)$/gm)].map((m) => Number(m[1]));
  return rounds.length ? Math.max(...rounds) : undefined;
}

test(`after ${KILLS} kill -9 during flushes (seed ${SEED}), every file parses and none is older than its last flush`, async () => {
  const dir = h.tempDir();
  let completed; // the newest round known to be fully on disk
  for (let kill = 0; kill < KILLS; kill++) {
    const { output, signal } = await runAndKill(dir, (kill + 1) * 1000000);
    expect(signal).toBe('SIGKILL');
    completed = lastFlushed(output);
    const files = fs.readdirSync(dir).filter((name) => name.endsWith('.rhfsession'));
    expect(files).toHaveLength(12);
    for (const name of files) {
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      const parsed = JSON.parse(text); // throws on a torn file
      expect(typeof parsed.serializedCookieJar).toBe('string');
      expect(parsed.data.round).toBeGreaterThanOrEqual(completed);
      expect(parsed.data.payload.startsWith(`${parsed.data.round}:`)).toBe(true);
    }
  }
  await expectAbandonedTemporariesRemoved(dir);
});

/**
 * Temporary files of killed writers go at the next cleanup once a minute old; one belonging to a
 * live process stays.
 */
async function expectAbandonedTemporariesRemoved(dir) {
  const twoMinutesAgo = new Date(Date.now() - 2 * 60 * 1000);
  const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const liveTemp = path.join(dir, `.rhfs-${live.pid}-inflight.tmp`);
  fs.writeFileSync(liveTemp, 'partial');
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith('.tmp')) fs.utimesSync(path.join(dir, name), twoMinutesAgo, twoMinutesAgo);
  }
  const store = new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: HammerheadSession,
    staleCleanupOptions: { staleTimeout: null, maxToLive: null, staleCheckInterval: 2 ** 31 - 1 },
  });
  try {
    await store.removeStaleSessions();
    const others = (name) => name.endsWith('.tmp') && !name.startsWith(`.rhfs-${process.pid}-`);
    expect(fs.readdirSync(dir).filter(others)).toEqual([path.basename(liveTemp)]);
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.rhfsession'))).toHaveLength(12);
  } finally {
    live.kill('SIGKILL');
    store.close();
  }
}
