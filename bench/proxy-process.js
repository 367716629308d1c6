'use strict';

// A hammerhead proxy on one store, for the end-to-end figure of bench/run.js.
// Run as: node proxy-process.js STORE DIR PORT SESSION_CLASS STALE_CHECK_INTERVAL
//   STORE: "ours", or the path of rammerhead's RammerheadSessionFileCache.js
const { Proxy } = require('testcafe-hammerhead');

const [kind, saveDirectory, port, sessionClassPath, staleCheckInterval] = process.argv.slice(2);
const DAY = 24 * 60 * 60 * 1000;
const quiet = { debug() {}, info() {}, warn() {}, error() {}, traffic() {} };
const options = {
  saveDirectory,
  logger: quiet,
  staleCleanupOptions: {
    staleTimeout: DAY,
    maxToLive: null,
    staleCheckInterval: Number(staleCheckInterval),
  },
};

const proxy = new Proxy();
proxy.start({ hostname: '127.0.0.1', port1: Number(port), port2: Number(port) + 1 });
const store =
  kind === 'ours'
    ? new (require('..').RammerheadSessionFileCache)({
        ...options,
        sessionClass: require(sessionClassPath),
      })
    : new (require(kind))(options);
store.attachToProxy(proxy);
