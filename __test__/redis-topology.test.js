'use strict';

// A Redis the store cannot use (a cluster node, a replica, a Sentinel) behind a redis:// URL is
// said at start, clearly, and the store never says `available` while its writes fail.

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { RammerheadSessionRedisStore } = require('..');
const h = require('./helpers');
const { RedisServer, sessionKey } = require('./redis-server');
const HammerheadSession = require('../demo/hammerhead-session');

const GOOD_JSON = fs.readFileSync(path.join(h.GOOD, `${h.GOOD_IDS.plain}.rhfsession`), 'utf8');

let servers = [];
let opened = [];

afterEach(async () => {
  for (const store of opened) {
    try {
      store.close();
    } catch {
      // sessions left unsaved on purpose
    }
  }
  opened = [];
  for (const server of servers) await server.close();
  servers = [];
});

async function server(options) {
  const started = await RedisServer.start(options);
  servers.push(started);
  return started;
}

function open(redisUrl) {
  const store = new RammerheadSessionRedisStore({
    redisUrl,
    keyPrefix: 'topology:',
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    logger: h.recordingLogger(),
    commandTimeout: 500,
    connectTimeout: 500,
  });
  opened.push(store);
  return store;
}

function expectRefused(store, why) {
  expect(store.stats().available).toBe(false);
  expect(store.logger.lines.warn.join('\n')).toMatch(why);
  expect(store.get('s')).toBeUndefined();
  // Kept in memory, as while Redis is down, never thrown into rammerhead's route.
  store.addSerializedSession('s', GOOD_JSON);
  expect(store.stats().keptInMemory).toBe(1);
}

test('a Redis Cluster node behind a redis:// URL is refused at start, saying why', async () => {
  const node = await server({ args: ['--cluster-enabled', 'yes'] });
  expectRefused(open(node.url), /cannot use redis:\/\/.*Redis Cluster node/);
});

test('a replica is refused at start: it would refuse every write', async () => {
  const master = await server();
  const replica = await server({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  expectRefused(open(replica.url), /replica \(role:slave\)/);
});

test('a Sentinel is refused at start: it holds no data', async () => {
  const master = await server();
  const port = await h.freePort();
  const dir = h.tempDir();
  const config = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(
    config,
    `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor m 127.0.0.1 ${master.port} 1\n`,
  );
  const sentinel = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
  try {
    await h.until(
      () =>
        new Promise((resolve) => {
          const socket = net.connect(port, '127.0.0.1');
          socket.once('connect', () => resolve(socket.destroy() || true));
          socket.once('error', () => resolve(false));
        }),
    );
    expectRefused(open(`redis://127.0.0.1:${port}`), /Sentinel \(redis_mode:sentinel\)/);
  } finally {
    sentinel.kill('SIGKILL');
  }
});

test('a master turned replica stops the store from saying it is available, until it is master again', async () => {
  const master = await server();
  const other = await server();
  const store = open(master.url);
  store.addSerializedSession('s', GOOD_JSON);
  expect(store.stats().available).toBe(true);

  master.cli('REPLICAOF', '127.0.0.1', String(other.port));
  store.get('s').data.changed = true;
  await store.writeChanges();
  await store.whenWritten();
  await h.until(() => !store.stats().available);
  expect(store.backend.unavailableBecause).toMatch(/replica/);

  // Master again, holding what it copied meanwhile: the change held here is stored.
  master.cli('REPLICAOF', 'NO', 'ONE');
  await h.until(() => store.stats().available);
  await h.until(async () => {
    await store.writeChanges();
    await store.whenWritten();
    return master.cli('GET', sessionKey('topology:', 's')).includes('"changed":true');
  });
});
