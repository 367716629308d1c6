'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');
const { RedisServer, sessionKey } = require('./redis-server');

const SERVER = path.join(__dirname, '..', 'demo', 'server.js');

/** Starts `npm start`'s server and resolves with its READY info and the child. */
function startServer(dir, ...more) {
  const child = spawn(process.execPath, [SERVER, '--port', '0', '--dir', dir, ...more], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = h
    .until(() => /^READY (.*)$/m.exec(output), { timeout: 30000 })
    .then((match) => JSON.parse(match[1]));
  return { child, ready, exited };
}

const get = async (url) => (await h.fetchText(url)).body;

/** Starts the server again with `args`: it serves the session of `info`, sending `cookie`. */
async function expectRestartServes(info, cookie, ...args) {
  const second = startServer(...args);
  try {
    const again = await second.ready;
    expect(again.session).toBe(info.session);
    expect(await get(`${again.sessionLink}cookies`)).toContain(cookie);
  } finally {
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
  }
}

test('npm start serves a proxied page and keeps the session cookies across a restart', async () => {
  const dir = path.join(h.tempDir(), 'not-yet-there');
  const first = startServer(dir);
  try {
    const info = await first.ready;
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    expect(info.proxy).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await get(info.sessionLink)).toContain('Proxied through a stored session');
    expect(await get(`${info.sessionLink}set-cookie`)).toContain('<b id="visits">1</b>');
    expect(await get(`${info.sessionLink}set-cookie`)).toContain('<b id="visits">2</b>');
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);

    const file = path.join(dir, `${info.session}.rhfsession`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    await expectRestartServes(info, 'demo_visits=2', dir);
  } finally {
    first.child.kill('SIGKILL');
  }
});

test('npm start -- --redis keeps the session in Redis across a restart', async () => {
  const redis = await RedisServer.start();
  const dir = h.tempDir();
  const first = startServer(dir, '--redis', redis.url);
  try {
    const info = await first.ready;
    expect(info.sessionsIn).toBe(redis.url);
    expect(await get(`${info.sessionLink}set-cookie`)).toContain('<b id="visits">1</b>');
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(redis.cli('GET', sessionKey('rammerhead:', info.session))).toContain('demo_visits');
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.rhfsession'))).toEqual([]);

    await expectRestartServes(info, 'demo_visits=1', dir, '--redis', redis.url);
  } finally {
    first.child.kill('SIGKILL');
    await redis.close();
  }
});

test('--help prints the usage and exits 0; a bad flag exits 2', () => {
  const help = spawnSync(process.execPath, [SERVER, '--help'], { encoding: 'utf8' });
  expect(help.status).toBe(0);
  expect(help.stdout).toContain('--port');
  const bad = spawnSync(process.execPath, [SERVER, '--nope', 'x'], { encoding: 'utf8' });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('unknown option --nope');
});
