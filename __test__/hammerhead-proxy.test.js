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
    const numbered = /^\/set\/(\d+)$/.exec(req.url);
    if (numbered) {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'set-cookie': [`c${numbered[1]}=v; Path=/; Max-Age=3600`],
      });
      res.end('set');
    } else if (req.url === '/login') {
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

/** Makes stores on `redis` under `keyPrefix`, as every host of one deployment has. */
function redisStores(redis, keyPrefix, options = {}) {
  return () =>
    new RammerheadSessionRedisStore({
      redisUrl: redis.url,
      keyPrefix,
      sessionClass: HammerheadSession,
      staleCleanupOptions: null,
      ...options,
    });
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
  const onRedis = redisStores(redis, 'proxies:');
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

test('requests of one session alternating between proxies on two Redis stores: every cookie arrives', async () => {
  const redis = await RedisServer.start();
  const site = await startSite();
  const target = `http://127.0.0.1:${site.address().port}`;
  const onRedis = redisStores(redis, 'alternating:');
  const proxies = [await startProxy(null, onRedis), await startProxy(null, onRedis)];
  const requests = 30;
  try {
    proxies[0].store.addSerializedSession(
      'both',
      new HammerheadSession({ id: 'both' }).serializeSession(),
    );
    for (let i = 0; i < requests; i++) {
      const { base } = proxies[i % 2];
      expect((await h.fetchText(`${base}/both/${target}/set/${i}`)).body).toContain('set');
    }
    const all = Array.from({ length: requests }, (_, i) => `c${i}=v`).sort();
    const seen = async ({ base }) => {
      const { body } = await h.fetchText(`${base}/both/${target}/whoami`);
      // hammerhead wraps the text in a page of its own.
      return /cookies: ([^<]*)/.exec(body)[1].split('; ').sort();
    };
    await h.until(async () => {
      const views = await Promise.all(proxies.map(seen));
      return views.every((view) => JSON.stringify(view) === JSON.stringify(all));
    });
  } finally {
    for (const { proxy, store } of proxies) {
      proxy.close();
      store.close();
    }
    site.close();
    await redis.close();
  }
});
