'use strict';

// On a proxy with rammerhead's request pipeline, the store gets each request's session ready
// before hammerhead reads it: a session not in memory is loaded without holding up other
// requests, and a held Redis session is checked against Redis first.

const http = require('http');
const net = require('net');
const { RammerheadSessionFileCache, RammerheadSessionRedisStore } = require('..');
const { sessionIdOf } = require('../lib/api/request-step');
const h = require('./helpers');
const { RedisServer } = require('./redis-server');
const { PipelineProxy } = require('./support/pipeline-proxy');
const HammerheadSession = require('../demo/hammerhead-session');

const ID = 'a'.repeat(32);
const OTHER = 'b'.repeat(32);

let redis;
let prefixes = 0;
let running = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(() => redis.close());
afterEach(async () => {
  for (const close of running.reverse()) await close();
  running = [];
});

/** A site that sets the cookie named by `?set=name` and shows the cookies it receives. */
async function startSite() {
  const server = http.createServer((req, res) => {
    const set = /[?&]set=(\w+)/.exec(req.url);
    const headers = { 'content-type': 'text/plain' };
    if (set) headers['set-cookie'] = [`${set[1]}=1; Path=/; Max-Age=3600`];
    res.writeHead(200, headers);
    res.end(`cookies: ${req.headers.cookie || ''}`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  running.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

async function startProxy(store) {
  const [port1, port2] = [await h.freePort(), await h.freePort()];
  const proxy = new PipelineProxy();
  proxy.start({ hostname: '127.0.0.1', port1, port2 });
  store.attachToProxy(proxy);
  running.push(() => {
    proxy.close();
    try {
      store.close();
    } catch {
      // sessions left unsaved on purpose
    }
  });
  return { proxy, base: `http://127.0.0.1:${port1}` };
}

function redisStore(options = {}) {
  return new RammerheadSessionRedisStore({
    redisUrl: redis.url,
    keyPrefix: `step${prefixes}:`,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    logger: h.recordingLogger(),
    commandTimeout: 300,
    connectTimeout: 300,
    // Never missed on a busy machine; the test of a hung Redis sets its own.
    syncTimeout: 10000,
    ...options,
  });
}

test("a request's session is its proxied URL's first segment, up to * or !, else its referer's", () => {
  expect(sessionIdOf({ url: `/${ID}/http://site.test/` })).toBe(ID);
  expect(sessionIdOf({ url: `http://proxy.test/${ID}!s/http://site.test/` })).toBe(ID);
  expect(sessionIdOf({ url: `/${ID}*window!i/http://site.test/` })).toBe(ID);
  expect(sessionIdOf({ url: '/any%20id/http://site.test/' })).toBe('any%20id');
  expect(sessionIdOf({ url: '/favicon.ico', headers: { referer: `http://p.test/${ID}/x` } })).toBe(
    ID,
  );
  expect(sessionIdOf({ url: '/newsession', headers: {} })).toBeUndefined();
  expect(sessionIdOf({ url: '/!s/http://site.test/' })).toBeUndefined();
  expect(sessionIdOf({ url: `/${ID}` })).toBeUndefined();
});

test("a route's session is named by its query's id or sessionId, else by its referer", () => {
  const route = (url, headers = {}) => sessionIdOf({ url, headers }, true);
  expect(route(`/editsession?id=${ID}&httpProxy=`)).toBe(ID);
  expect(route(`/syncLocalStorage?origin=x&sessionId=${ID}`)).toBe(ID);
  expect(route(`/editsession?id=%61${ID.slice(1)}`)).toBe(ID);
  expect(route(`/editsession?xid=${ID}`)).toBeUndefined();
  expect(route(`/editsession?id=&sessionId=${OTHER}`)).toBe(OTHER);
  expect(route('/api/shuffleDict')).toBeUndefined();
  expect(route('/messaging', { referer: `http://p.test/${ID}/http://site.test/` })).toBe(ID);
});

test('FileCache: a session not in memory is read off the JavaScript thread, once for concurrent requests, and served with its cookies', async () => {
  const site = await startSite();
  const dir = h.tempDir();
  const first = new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  first.add(ID).cookies.setByServer(`${site}/`, ['kept=1; Path=/; Max-Age=3600']);
  first.close();

  const store = new RammerheadSessionFileCache({
    saveDirectory: dir,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  const load = jest.spyOn(store.backend, 'load');
  const loadLater = jest.spyOn(store.backend, 'loadLater');
  const { proxy, base } = await startProxy(store);
  const [one, two] = await Promise.all([
    h.fetchText(`${base}/${ID}/${site}/`),
    h.fetchText(`${base}/${ID}/${site}/`),
  ]);
  expect(one.body).toContain('kept=1');
  expect(two.body).toContain('kept=1');
  expect(loadLater).toHaveBeenCalledTimes(1);
  expect(load).not.toHaveBeenCalled();
  // Sessions that are not there, under any id hammerhead or rammerhead reads (its own step
  // reads the 32 letters and digits opening the path): not waited for on the JavaScript thread
  // either.
  proxy.addToOnRequestPipeline((req) => {
    const opening = /^\/([a-z0-9]{32})/i.exec(req.url);
    if (opening) store.get(opening[1]);
  });
  for (const missing of [OTHER, 'bad%20password', `${OTHER}tail`]) {
    expect((await h.fetchText(`${base}/${missing}/${site}/`)).status).toBe(404);
  }
  expect(load).not.toHaveBeenCalled();
});

test('the step stays first when steps that read the session are added after it', async () => {
  const site = await startSite();
  prefixes++;
  const writer = redisStore();
  writer.addSerializedSession(ID, new HammerheadSession({ id: ID }).serializeSession());
  const store = redisStore();
  const load = jest.spyOn(store.backend, 'load');
  const { proxy, base } = await startProxy(store);
  // As rammerhead's own first step does with restrictSessionToIP.
  let seen;
  proxy.addToOnRequestPipeline((req) => {
    seen = store.get(sessionIdOf(req));
  });
  const answer = await h.fetchText(`${base}/${ID}/${site}/`);
  expect(answer.status).toBe(200);
  expect(seen.id).toBe(ID);
  expect(load).not.toHaveBeenCalled();
});

test.each([
  [true, 'taken in before the request reads it'],
  [false, 'not looked for: the held copy is served as it is'],
])('Redis, syncEachRequest %s: a copy another host stored unannounced is %s', async (check) => {
  const site = await startSite();
  prefixes++;
  const here = redisStore({ syncEachRequest: check });
  const { base } = await startProxy(here);
  // Subscribed before it holds anything: a subscription checks every held version again, and
  // that check, still running when the other host writes, would find its change.
  await h.until(() => here.stats().subscribed);
  here.addSerializedSession(ID, new HammerheadSession({ id: ID }).serializeSession());
  await h.fetchText(`${base}/${ID}/${site}/?set=first`);
  await here.whenWritten();
  // Another host that cannot announce its writes (the ACL forbids it to publish).
  redis.cli('ACL', 'SETUSER', 'mute', 'on', '>secret', '~*', '+@all', 'resetchannels');
  const elsewhere = redisStore({ redisUrl: redis.url.replace('redis://', 'redis://mute:secret@') });
  elsewhere.get(ID).cookies.setByServer(`${site}/`, ['second=1; Path=/; Max-Age=3600']);
  await elsewhere.writeChanges();
  await elsewhere.whenWritten();
  elsewhere.close();

  const answer = await h.fetchText(`${base}/${ID}/${site}/`);
  expect(answer.body).toContain('first=1');
  expect(answer.body.includes('second=1')).toBe(check);
});

test('Redis hung: requests of a held session are answered while one of a session not in memory waits', async () => {
  const site = await startSite();
  prefixes++;
  const here = redisStore({ syncTimeout: 25 });
  const { base } = await startProxy(here);
  here.addSerializedSession(ID, new HammerheadSession({ id: ID }).serializeSession());
  const elsewhere = redisStore();
  elsewhere.addSerializedSession(OTHER, new HammerheadSession({ id: OTHER }).serializeSession());
  elsewhere.close();
  await h.fetchText(`${base}/${ID}/${site}/`);

  process.kill(redis.child.pid, 'SIGSTOP');
  try {
    const order = [];
    const cold = h.fetchText(`${base}/${OTHER}/${site}/`).then((answer) => {
      order.push('cold');
      return answer;
    });
    for (let i = 0; i < 3; i++) {
      const held = await h.fetchText(`${base}/${ID}/${site}/`);
      expect(held.status).toBe(200);
      order.push('held');
    }
    await cold;
    expect(order).toEqual(['held', 'held', 'held', 'cold']);
  } finally {
    process.kill(redis.child.pid, 'SIGCONT');
  }
  // Once Redis answers again, the session not in memory is served, and checks resume.
  await h.until(() => here.stats().available);
  await h.until(() => !here.requests.lagging);
  const answer = await h.fetchText(`${base}/${OTHER}/${site}/?set=back`);
  expect(answer.status).toBe(200);
  await h.until(async () =>
    (await h.fetchText(`${base}/${OTHER}/${site}/`)).body.includes('back=1'),
  );
});

test('Redis: a response that set a cookie leaves once Redis holds it; one that changed nothing is not held', async () => {
  const site = await startSite();
  prefixes++;
  const here = redisStore();
  const { base } = await startProxy(here);
  here.addSerializedSession(ID, new HammerheadSession({ id: ID }).serializeSession());
  const storeNow = jest.spyOn(here.changes, 'storeNow');
  const reader = redisStore();
  running.push(() => reader.close());
  const storedCookies = () => reader.backend.load(ID).json;

  await h.fetchText(`${base}/${ID}/${site}/`);
  expect(storeNow).not.toHaveBeenCalled();
  for (const name of ['one', 'two']) {
    await h.fetchText(`${base}/${ID}/${site}/?set=${name}`);
    // Read at once, before this process's event loop turns again.
    expect(storedCookies()).toContain(name);
  }
  expect(storeNow).toHaveBeenCalledTimes(2);
});

test('Redis: a route imports and deletes without waiting on the event loop; its response waits instead', async () => {
  prefixes++;
  const here = redisStore({ syncEachRequest: false, maxSessionBytes: 4096 });
  const { proxy, base } = await startProxy(here);
  const imports = jest.spyOn(here.backend, 'import');
  const removals = jest.spyOn(here.backend, 'remove');
  const reader = redisStore();
  running.push(() => reader.close());
  proxy.GET('/newsession', (req, res) => {
    here.addSerializedSession(ID, new HammerheadSession({ id: ID }).serializeSession());
    res.end('made');
  });
  proxy.GET('/deletesession', (req, res) => {
    res.end(String(here.delete(ID)));
  });
  proxy.GET('/toolarge', (req, res) => {
    const session = new HammerheadSession({ id: OTHER });
    session.data.filler = 'x'.repeat(5000);
    try {
      here.addSerializedSession(OTHER, session.serializeSession());
      res.end('stored');
    } catch (error) {
      res.end(error.code);
    }
  });

  expect((await h.fetchText(`${base}/newsession`)).body).toBe('made');
  expect(reader.backend.load(ID)).not.toBeNull();
  expect(here.has(ID)).toBe(true);
  expect((await h.fetchText(`${base}/deletesession`)).body).toBe('true');
  expect(reader.backend.load(ID)).toBeNull();
  expect(here.has(ID)).toBe(false);
  // Refused at once, as the import outside a route would be.
  expect((await h.fetchText(`${base}/toolarge`)).body).toBe('ERR_SESSION_TOO_LARGE');
  expect(here.has(OTHER)).toBe(false);
  expect(imports).not.toHaveBeenCalled();
  expect(removals).not.toHaveBeenCalled();
});

test("Redis: a route's reply is only the route's: a request after it on the same connection deletes as outside a route", async () => {
  prefixes++;
  const here = redisStore();
  const { proxy, base } = await startProxy(here);
  here.addSerializedSession(ID, new HammerheadSession({ id: ID }).serializeSession());
  here.addSerializedSession(OTHER, new HammerheadSession({ id: OTHER }).serializeSession());
  const removeNow = jest.spyOn(here.backend, 'remove');
  const removeLater = jest.spyOn(here.backend, 'removeLater');
  let answer;
  proxy.GET('/slowdelete', (req, res) => {
    here.delete(ID);
    // Answered a moment later, as a route that reads its body does.
    setImmediate(() => answer(res));
  });
  proxy.addToOnRequestPipeline((req, res, serverInfo, isRoute) => {
    if (!isRoute) here.delete(OTHER);
    return false;
  });
  const routeDone = new Promise((resolve) => {
    answer = (res) => {
      res.end('deleted');
      resolve();
    };
  });
  // A route and a proxied page, pipelined on one connection.
  const socket = net.connect(Number(new URL(base).port), '127.0.0.1');
  let received = '';
  socket.on('data', (data) => (received += data));
  socket.write(
    `GET /slowdelete?id=${ID} HTTP/1.1\r\nHost: x\r\n\r\n` +
      `GET /${OTHER}/http://site.test/ HTTP/1.1\r\nHost: x\r\n\r\n`,
  );
  await routeDone;
  await h.until(() => removeNow.mock.calls.length > 0 && received.includes('deleted'));
  socket.destroy();
  expect(removeLater.mock.calls).toEqual([[[ID]]]);
  expect(removeNow.mock.calls).toEqual([[OTHER]]);
});

test('a WebSocket upgrade for a session that is not there looks for it once, off the JavaScript thread', async () => {
  const store = new RammerheadSessionFileCache({
    saveDirectory: h.tempDir(),
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  const load = jest.spyOn(store.backend, 'load');
  const loadLater = jest.spyOn(store.backend, 'loadLater');
  const { base } = await startProxy(store);
  // hammerhead closes the socket of an upgrade it has no session for.
  const answer = await h.webSocketHandshake(`${base}/${OTHER}!w/http://site.test/socket`);
  expect(answer).not.toBe(101);
  expect(loadLater).toHaveBeenCalledTimes(1);
  expect(load).not.toHaveBeenCalled();
});
