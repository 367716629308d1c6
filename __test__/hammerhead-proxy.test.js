'use strict';

const http = require('http');
const { Proxy } = require('testcafe-hammerhead');
const { RammerheadSessionFileCache, RammerheadSessionRedisStore } = require('..');
const h = require('./helpers');
const { RedisServer } = require('./redis-server');
const HammerheadSession = require('../demo/hammerhead-session');

/** A site that sets a cookie on /login and shows the cookies it receives on /whoami. */
function startSite() {
  const server = http.createServer((req, res) => {
    if (req.url === '/login') {
      res.writeHead(200, {
        'content-type': 'text/html',
        'set-cookie': ['user=alice; Path=/; Max-Age=3600', 'theme=dark; Path=/; Max-Age=3600'],
      });
      res.end('<html><body>logged in</body></html>');
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`cookies: ${req.headers.cookie || ''}`);
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function startProxy(saveDirectory, makeStore = fileCache) {
  const [port1, port2] = [await h.freePort(), await h.freePort()];
  const proxy = new Proxy();
  proxy.start({ hostname: '127.0.0.1', port1, port2 });
  const store = makeStore(saveDirectory);
  store.attachToProxy(proxy);
  return { proxy, store, base: `http://127.0.0.1:${port1}` };
}

function fileCache(saveDirectory) {
  return new RammerheadSessionFileCache({
    saveDirectory,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
}

test('cookies set through a hammerhead proxy survive close() and a new store', async () => {
  const site = await startSite();
  const target = `http://127.0.0.1:${site.address().port}`;
  const dir = h.tempDir();
  const id = 'cookiesession';

  const first = await startProxy(dir);
  first.store.add(id);
  const login = await first.proxy.openSessions.get(id); // hammerhead's lookup
  expect(login).toBeDefined();
  const loggedIn = await h.fetchText(`${first.base}/${id}/${target}/login`);
  expect(loggedIn.status).toBe(200);
  expect(loggedIn.body).toContain('logged in');
  first.proxy.close();
  first.store.close();

  const second = await startProxy(dir);
  try {
    const whoami = await h.fetchText(`${second.base}/${id}/${target}/whoami`);
    expect(whoami.body).toContain('user=alice');
    expect(whoami.body).toContain('theme=dark');
  } finally {
    second.proxy.close();
    second.store.close();
    site.close();
  }
});

test('cookies set through a proxy on one Redis store reach a proxy on another, while both run', async () => {
  const redis = await RedisServer.start();
  const site = await startSite();
  const target = `http://127.0.0.1:${site.address().port}`;
  const onRedis = () =>
    new RammerheadSessionRedisStore({
      redisUrl: redis.url,
      keyPrefix: 'proxies:',
      sessionClass: HammerheadSession,
      staleCleanupOptions: null,
    });
  const first = await startProxy(null, onRedis);
  const second = await startProxy(null, onRedis);
  try {
    first.store.add('shared');
    await first.store.whenWritten();
    const loggedIn = await h.fetchText(`${first.base}/shared/${target}/login`);
    expect(loggedIn.body).toContain('logged in');
    // Within a round the change is in Redis, and the other host loads it from there.
    await first.store.writeChanges();
    await first.store.whenWritten();
    const whoami = await h.fetchText(`${second.base}/shared/${target}/whoami`);
    expect(whoami.body).toContain('user=alice');
    expect(whoami.body).toContain('theme=dark');
  } finally {
    for (const { proxy, store } of [first, second]) {
      proxy.close();
      store.close();
    }
    site.close();
    await redis.close();
  }
});
