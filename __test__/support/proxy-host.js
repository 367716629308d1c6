'use strict';

// One proxy host: a proxy with rammerhead's request pipeline (see pipeline-proxy.js) and a Redis
// store in a process of its own, as one rammerhead server behind a round-robin balancer.
//   node proxy-host.js REDIS_URL KEY_PREFIX SYNC_TIMEOUT
// prints {"port": N} once it listens. Routes shaped as rammerhead's (same paths, same calls on
// the store), for the tests to drive:
//   GET /newsession              a new session, stored with addSerializedSession; answers its id
//   GET /editsession?id=&note=   sets the session's data.note; answers "Success"
//   GET /shownote?id=            answers the session's data.note
//   GET /sessionexists?id=       "exists" or "not found"
//   GET /deletesession?id=       deletes the session; answers "Success"
// Reads "close" on stdin: closes the store (storing what it holds) and exits.
const crypto = require('crypto');
const readline = require('readline');
const { RammerheadSessionRedisStore } = require('../..');
const HammerheadSession = require('../../demo/hammerhead-session');
const { freePort } = require('../helpers');
const { PipelineProxy } = require('./pipeline-proxy');

const [redisUrl, keyPrefix, syncTimeout] = process.argv.slice(2);
const store = new RammerheadSessionRedisStore({
  redisUrl,
  keyPrefix,
  sessionClass: HammerheadSession,
  staleCleanupOptions: null,
  commandTimeout: 1000,
  connectTimeout: 1000,
  syncTimeout: Number(syncTimeout),
});
const proxy = new PipelineProxy();
store.attachToProxy(proxy);

const idOf = (req) => new URL(req.url, 'http://host.test').searchParams.get('id');
proxy.GET('/newsession', (req, res) => {
  const id = crypto.randomBytes(16).toString('hex');
  store.addSerializedSession(id, new HammerheadSession({ id }).serializeSession());
  res.end(id);
});
proxy.GET('/editsession', (req, res) => {
  const id = idOf(req);
  if (!id || !store.has(id)) {
    res.end('not found');
    return;
  }
  store.get(id).data.note = new URL(req.url, 'http://host.test').searchParams.get('note');
  res.end('Success');
});
proxy.GET('/shownote', (req, res) => {
  const session = store.get(idOf(req) || '');
  res.end(session ? String(session.data.note) : 'not found');
});
proxy.GET('/sessionexists', (req, res) => {
  res.end(store.has(idOf(req) || '') ? 'exists' : 'not found');
});
proxy.GET('/deletesession', (req, res) => {
  const id = idOf(req);
  if (!id || !store.has(id)) {
    res.end('not found');
    return;
  }
  store.delete(id);
  res.end('Success');
});

(async () => {
  const [port1, port2] = [await freePort(), await freePort()];
  proxy.start({ hostname: '127.0.0.1', port1, port2 });
  process.stdout.write(`${JSON.stringify({ port: port1 })}\n`);
})();

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'close') return;
  proxy.close();
  store.close();
  process.exit(0);
});
