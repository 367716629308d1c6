'use strict';

// A proxy on one store, for the end-to-end figure of bench/run.js: testcafe-hammerhead with
// rammerhead's request pipeline (see __test__/support/pipeline-proxy.js), and a `/newsession`
// route that stores a new session with `addSerializedSession`, as rammerhead's does.
// Run as: node proxy-process.js STORE DIR PORT SESSION_CLASS STALE_CHECK_INTERVAL [REDIS_URL]
//   STORE: "file" (this FileCache), "redis" (this Redis store, on REDIS_URL under "e2e:"), or
//   the path of rammerhead's RammerheadSessionFileCache.js
const crypto = require('crypto');
const { PipelineProxy } = require('../__test__/support/pipeline-proxy');

const [kind, saveDirectory, port, sessionClassPath, staleCheckInterval, redisUrl] =
  process.argv.slice(2);
const DAY = 24 * 60 * 60 * 1000;
const quiet = { debug() {}, info() {}, warn() {}, error() {}, traffic() {} };
const sessionClass = require(sessionClassPath);
const options = {
  saveDirectory,
  logger: quiet,
  staleCleanupOptions: {
    staleTimeout: DAY,
    maxToLive: null,
    staleCheckInterval: Number(staleCheckInterval),
  },
};

function storeOf() {
  const ours = require('..');
  if (kind === 'file') return new ours.RammerheadSessionFileCache({ ...options, sessionClass });
  if (kind === 'redis') {
    return new ours.RammerheadSessionRedisStore({
      ...options,
      sessionClass,
      redisUrl,
      keyPrefix: 'e2e:',
    });
  }
  return new (require(kind))(options);
}

const proxy = new PipelineProxy();
proxy.start({ hostname: '127.0.0.1', port1: Number(port), port2: Number(port) + 1 });
const store = storeOf();
store.attachToProxy(proxy);
proxy.GET('/newsession', (req, res) => {
  const id = crypto.randomBytes(16).toString('hex');
  store.addSerializedSession(id, new sessionClass({ id }).serializeSession());
  res.end(id);
});
