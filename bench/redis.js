'use strict';

// The Redis store's figures in `npm run bench`, against a redis-server of the bench's own on
// loopback (the one the tests use).
const net = require('net');
const { RedisServer } = require('../__test__/redis-server');
const { ourRedisStore } = require('./stores');

/** A session of about `bytes` bytes: the fixture with localStorage filled up to that size. */
function sessionOfSize(template, bytes) {
  const session = JSON.parse(template);
  const padding = Math.max(0, bytes - template.length - 64);
  session.data.localStorage = { 'http://bench.test': { data: { fill: 'x'.repeat(padding) } } };
  return JSON.stringify(session);
}

/**
 * @param {object} bench what the main benchmark measures with: ids, template, and its timing
 *   helpers (timeSync, timeLoads, perOp, withStall, settle)
 */
async function redisFigures(
  server,
  { ids, template, timeSync, timeLoads, perOp, withStall, settle },
) {
  const figures = { roundTrip: await pingRoundTrip(server) };
  const big = sessionOfSize(template, 10 * 1024);
  figures.bigBytes = big.length;

  let store = ourRedisStore(server.url, 'import:');
  figures.addSerialized = perOp(
    timeSync(() => ids.forEach((id) => store.addSerializedSession(id, template))),
  );
  store.close();

  store = ourRedisStore(server.url, 'big:');
  ids.forEach((id) => store.addSerializedSession(id, big));
  store.close();

  store = ourRedisStore(server.url, 'big:');
  figures.coldGet = perOp(await timeLoads(() => ids.forEach((id) => store.get(id))));
  figures.keys = timeSync(() => store.keys());
  // Every held session changes in use, as a request changes it; one round stores them all.
  // (Loading N sessions took longer than a session stays watched without use, at large N.)
  for (const id of ids) store.get(id).data.benchChanged = true;
  settle();
  const written = await withStall(async () => {
    await store.writeChanges();
    await store.whenWritten();
  });
  figures.writeChanged = perOp(written.wall);
  figures.writeStall = written.stall;
  if (store.stats().unwritten !== 0) throw new Error('a round left changed sessions unwritten');
  store.close();

  store = ourRedisStore(server.url, 'big:');
  figures.delete = perOp(timeSync(() => ids.forEach((id) => store.delete(id))));
  store.close();

  Object.assign(figures, await whileDown(server, { ids, timeSync }));
  return figures;
}

/**
 * A `get` of a session not in memory while Redis hangs (the process stopped, so connections
 * stay open and nothing answers): the first call waits for the command timeout, later ones not.
 */
async function whileDown(server, { ids, timeSync }) {
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

module.exports = { RedisServer, redisFigures, fill };
