'use strict';

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const WORKER = path.join(__dirname, 'support', 'write-under-limit.js');

/** Collects JSON lines from a child's stdout and hands them out in order. */
function lineReader(stream) {
  const queue = [];
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      queue.push(JSON.parse(buffer.slice(0, newline)));
      buffer = buffer.slice(newline + 1);
    }
  });
  return () => h.until(() => queue.shift());
}

test('a write that fails for a file-size limit loses nothing and succeeds once the limit is lifted', async () => {
  const dir = h.tempDir();
  // A 64 KiB soft limit on files this process writes; SIGXFSZ ignored so writes fail with EFBIG.
  const child = spawn(
    'bash',
    ['-c', `trap '' XFSZ; ulimit -S -f 64; exec "$0" "$@"`, process.execPath, WORKER, dir],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const next = lineReader(child.stdout);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  try {
    await checkLimitedThenLifted(dir, child, next, exited);
  } finally {
    child.kill('SIGKILL');
  }
});

async function checkLimitedThenLifted(dir, child, next, exited) {
  const limited = await next();
  expect(limited.step).toBe('limited');
  expect(limited.errors.join('\n')).toMatch(/big.*EFBIG/);
  expect(limited.closeError.code).toBe('ERR_SESSIONS_NOT_SAVED');
  expect(limited.closeError.ids).toEqual(['big']);
  expect(limited.bigInMemory).toBe(true);
  expect(limited.smallInMemory).toBe(false);
  const small = JSON.parse(fs.readFileSync(path.join(dir, 'small.rhfsession'), 'utf8'));
  expect(small.data.payload).toBe('small');
  // The file of "big" still holds its last complete version: the fresh session add() wrote.
  const before = JSON.parse(fs.readFileSync(path.join(dir, 'big.rhfsession'), 'utf8'));
  expect(before.data.payload).toBeUndefined();

  execFileSync('prlimit', ['--pid', String(child.pid), '--fsize=unlimited:unlimited']);
  child.stdin.write('go\n');
  expect(await next()).toEqual({ step: 'retried', bigInMemory: false });
  expect(await next()).toEqual({ step: 'closed' });
  expect(await exited).toBe(0);
  const after = JSON.parse(fs.readFileSync(path.join(dir, 'big.rhfsession'), 'utf8'));
  expect(after.data.payload).toHaveLength(512 * 1024);
  const leftovers = fs.readdirSync(dir).filter((name) => !name.endsWith('.rhfsession'));
  expect(leftovers).toEqual([]);
}

test('a directory removed under the store: the session waits in memory until it is back', async () => {
  // Covered in file-cache.test.js ("a failed flush keeps the session in memory ..."); this one
  // checks the same through close(), which must try every session and name the failed one.
  const parent = h.tempDir();
  const dir = path.join(parent, 'sessions');
  fs.mkdirSync(dir);
  const { RammerheadSessionFileCache } = require('..');
  const store = new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: require('../demo/hammerhead-session'),
    staleCleanupOptions: null,
  });
  const session = store.add('a');
  session.updateLastUsed();
  session.lastUsed += 1;
  await store.whenWritten();
  fs.rmSync(dir, { recursive: true });
  expect(() => store.close()).toThrow(expect.objectContaining({ code: 'ERR_SESSIONS_NOT_SAVED' }));
  fs.mkdirSync(dir);
  store.close();
  expect(JSON.parse(fs.readFileSync(path.join(dir, 'a.rhfsession'), 'utf8')).data.lastUsed).toBe(
    session.lastUsed,
  );
});
