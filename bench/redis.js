'use strict';

// The Redis store's figures in `npm run bench`, against a redis-server of the bench's own on
// loopback (the one the tests use).
const { execFile } = require('child_process');
const net = require('net');
const path = require('path');
const { promisify } = require('util');
const { RedisServer } = require('../__test__/redis-server');
const { timeSync } = require('./measure');
const { ourRedisStore } = require('./stores');

const runFile = promisify(execFile);

/**
 * The Redis store's figures: those a heap can sway each from a process of its own (see
 * redis-process.js), beside this machine's round trip and a `get` while Redis hangs.
 */
async function redisFigures(server, { ids }) {
  const roundTrip = await pingRoundTrip(server);
  const figures = { roundTrip };
  for (const figure of ['redisOps', 'redisKeys', 'redisRound']) {
    Object.assign(figures, await processFigure(figure, server.url, ids.length));
  }
  return { ...figures, ...whileDown(server, ids) };
}

/** One figure of redis-process.js, measured in a process of its own against `url`. */
async function processFigure(figure, url, n) {
  const { stdout } = await runFile(process.execPath, [
    '--expose-gc',
    '--max-old-space-size=8192',
    path.join(__dirname, 'redis-process.js'),
    figure,
    url,
    String(n),
  ]);
  return JSON.parse(stdout);
}

/**
 * A `get` of a session not in memory while Redis hangs (the process stopped, so connections
 * stay open and nothing answers): the first call waits for the command timeout, later ones not.
 */
function whileDown(server, ids) {
  const store = ourRedisStore(server.url, 'down:', { commandTimeout: 500 });
  process.kill(server.child.pid, 'SIGSTOP');
  try {
    const first = timeSync(() => store.get(ids[0]));
    const later = timeSync(() => {
      for (let i = 1; i < 1001; i++) store.get(ids[i % ids.length]);
    });
    return { downFirstGet: first, downLaterGet: (later * 1000) / 1000 };
  } finally {
    process.kill(server.child.pid, 'SIGCONT');
    store.close();
  }
}

/** Microseconds per PING answered, one at a time, over a plain socket: this machine's floor. */
function pingRoundTrip(server, count = 2000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.once('error', reject);
    let answered = 0;
    let start;
    socket.on('data', () => {
      if (++answered < count) return socket.write('PING\r\n');
      const micros = Number(process.hrtime.bigint() - start) / count / 1000;
      socket.destroy();
      return resolve(micros);
    });
    socket.once('connect', () => {
      start = process.hrtime.bigint();
      socket.write('PING\r\n');
    });
  });
}

/** Stores the sessions under `prefix` for the hot-path children to load. */
function fill(server, prefix, ids, template) {
  const store = ourRedisStore(server.url, prefix);
  for (const id of ids) store.addSerializedSession(id, template);
  store.close();
}

module.exports = { RedisServer, redisFigures, processFigure, fill };
