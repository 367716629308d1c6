'use strict';

// rediss:// with a password, as managed Redis services run it: a real redis-server speaking only
// TLS, with a certificate signed by an authority made for the test.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { RammerheadSessionRedisStore } = require('..');
const h = require('./helpers');
const { RedisServer, sessionKey } = require('./redis-server');
const { RedisCluster } = require('./support/redis-cluster');
const HammerheadSession = require('../demo/hammerhead-session');

const CLI = path.join(__dirname, '..', 'bin', 'rammerhead-sessions.js');
const GOOD_JSON = fs.readFileSync(
  path.join(h.GOOD, `${h.GOOD_IDS.cookiesAndLocalStorage}.rhfsession`),
  'utf8',
);

let redis;
let opened = [];

beforeAll(async () => {
  redis = await RedisServer.start({ tls: true, password: 'p@ss word' });
});
afterAll(() => redis.close());
afterEach(() => {
  for (const store of opened) store.close();
  opened = [];
});

function open(options = {}) {
  const store = new RammerheadSessionRedisStore({
    redisUrl: redis.url,
    tlsCa: redis.ca,
    keyPrefix: 'tls:',
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    logger: h.recordingLogger(),
    commandTimeout: 1000,
    connectTimeout: 1000,
    ...options,
  });
  opened.push(store);
  return store;
}

test('a store on rediss:// with credentials in the URL stores and serves sessions', () => {
  expect(redis.url).toMatch(/^rediss:\/\/:p%40ss%20word@/);
  const writer = open();
  expect(writer.stats().available).toBe(true);
  expect(writer.redisUrl).not.toContain('word');
  writer.addSerializedSession('over-tls', GOOD_JSON);
  expect(redis.cli('GET', sessionKey('tls:', 'over-tls'))).toBe(GOOD_JSON);
  const reader = open({ tlsCa: Buffer.from(redis.ca, 'latin1') });
  expect(reader.get('over-tls').data.localStorage).toEqual(JSON.parse(GOOD_JSON).data.localStorage);
});

test('a certificate no given authority signed is refused: the store stays unavailable and says why', () => {
  const store = open({ tlsCa: undefined });
  expect(store.stats().available).toBe(false);
  expect(store.logger.lines.warn.join('\n')).toMatch(
    /cannot use rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+ yet \(.*(certificate|Certificate).*\)/,
  );
  expect(store.get('over-tls')).toBeUndefined();
  expect(store.has('over-tls')).toBe(false);
});

test('a wrong password is refused, and not shown', () => {
  const url = redis.url.replace('p%40ss%20word', 'wrong');
  const store = open({ redisUrl: url });
  expect(store.stats().available).toBe(false);
  const warning = store.logger.lines.warn.join('\n');
  expect(warning).toMatch(/WRONGPASS.*invalid username-password pair/);
  expect(warning).not.toContain('wrong');
});

test('tlsCa must be PEM certificates, and needs a rediss:// URL', () => {
  h.expectTypeError(() => open({ tlsCa: 'not a certificate' }), 'tlsCa');
  h.expectTypeError(() => open({ tlsCa: 42 }), 'tlsCa');
  const plain = redis.url.replace('rediss://', 'redis://');
  const error = h.expectTypeError(() => open({ redisUrl: plain }));
  expect(error.code).toBe('ERR_INVALID_REDIS_URL');
});

test('rammerhead-sessions reaches the server with --tls-ca', () => {
  const run = (...args) =>
    spawnSync(process.execPath, [CLI, ...args, '--prefix', 'tls:', '--json'], {
      encoding: 'utf8',
    });
  const ca = path.join(redis.dir, 'ca.pem');
  const stats = run('stats', redis.url, '--tls-ca', ca);
  expect(stats.stderr).toBe('');
  expect(JSON.parse(stats.stdout).sessions).toBeGreaterThanOrEqual(1);
  const refused = run('stats', redis.url);
  expect(refused.status).toBe(3);
  expect(refused.stderr).toContain('ERR_REDIS_UNAVAILABLE');
});

test('tlsInsecure accepts a certificate no given authority signed, and says so at every start', () => {
  const store = open({ tlsCa: undefined, tlsInsecure: true });
  expect(store.stats().available).toBe(true);
  store.addSerializedSession('insecure', GOOD_JSON);
  expect(redis.cli('GET', sessionKey('tls:', 'insecure'))).toBe(GOOD_JSON);
  const warning = store.logger.lines.warn.join('\n');
  expect(warning).toMatch(/TLS certificate checks are off \(tlsInsecure\)/);
  expect(warning).not.toContain('word');
});

test('RAMMERHEAD_SESSION_TLS_INSECURE=1 turns the checks off when the option is not given', () => {
  const previous = process.env.RAMMERHEAD_SESSION_TLS_INSECURE;
  try {
    process.env.RAMMERHEAD_SESSION_TLS_INSECURE = '1';
    const store = open({ tlsCa: undefined });
    expect(store.tlsInsecure).toBe(true);
    expect(store.stats().available).toBe(true);
    // The option, when given, decides.
    expect(open({ tlsCa: undefined, tlsInsecure: false }).stats().available).toBe(false);
    process.env.RAMMERHEAD_SESSION_TLS_INSECURE = 'yes';
    h.expectTypeError(() => open({ tlsCa: undefined }), 'RAMMERHEAD_SESSION_TLS_INSECURE');
  } finally {
    if (previous === undefined) delete process.env.RAMMERHEAD_SESSION_TLS_INSECURE;
    else process.env.RAMMERHEAD_SESSION_TLS_INSECURE = previous;
  }
});

test('certificate checks are never turned off by the URL, nor for redis://, nor beside tlsCa', () => {
  const refused = (options) => {
    const error = h.expectTypeError(() => open(options));
    expect(error.code).toBe('ERR_INVALID_REDIS_URL');
    return error.message;
  };
  expect(refused({ tlsCa: undefined, redisUrl: `${redis.url}/#insecure` })).toContain(
    'tlsInsecure',
  );
  expect(refused({ tlsInsecure: true })).toContain('tlsCa');
  const plain = redis.url.replace('rediss://', 'redis://');
  expect(refused({ tlsCa: undefined, tlsInsecure: true, redisUrl: plain })).toContain('rediss://');
  h.expectTypeError(() => open({ tlsInsecure: 'yes' }), 'tlsInsecure');
});

test('rammerhead-sessions reaches the server with --tls-insecure, saying the checks are off', () => {
  const stats = spawnSync(
    process.execPath,
    [CLI, 'stats', redis.url, '--tls-insecure', '--prefix', 'tls:', '--json'],
    { encoding: 'utf8' },
  );
  expect(stats.status).toBe(0);
  expect(JSON.parse(stats.stdout).sessions).toBeGreaterThanOrEqual(1);
  expect(stats.stderr).toContain('TLS certificate checks are off');
});

describe('a Redis Cluster speaking only TLS (rediss+cluster://), as managed clusters run', () => {
  let cluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start({ tls: true });
  }, 60000);
  afterAll(() => cluster && cluster.close());

  test('stores and serves across hosts with the nodes’ authority; without it, says why', () => {
    expect(cluster.url).toMatch(/^rediss\+cluster:\/\//);
    const writer = open({ redisUrl: cluster.url, tlsCa: cluster.ca });
    expect(writer.stats().available).toBe(true);
    for (let i = 0; i < 20; i++) writer.addSerializedSession(`tls${i}`, GOOD_JSON);
    const reader = open({ redisUrl: cluster.url, tlsCa: cluster.ca });
    for (let i = 0; i < 20; i++) expect(reader.get(`tls${i}`)).toBeDefined();
    expect(reader.keys().length).toBe(20);
    const untrusting = open({ redisUrl: cluster.url, tlsCa: undefined });
    expect(untrusting.stats().available).toBe(false);
    expect(untrusting.logger.lines.warn.join('\n')).toMatch(/certificate|UnknownIssuer/i);
    const insecure = open({ redisUrl: cluster.url, tlsCa: undefined, tlsInsecure: true });
    expect(insecure.get('tls0')).toBeDefined();
  });
});
