'use strict';

// Two proxy hosts in processes of their own on one real Redis, behind a client that sends each
// request to the other host as soon as the response before has arrived, as a round-robin
// balancer does: every request finds every change the responses before it made.

const { spawn } = require('child_process');
const http = require('http');
const path = require('path');
const readline = require('readline');
const h = require('./helpers');
const { RedisServer } = require('./redis-server');

const HOST = path.join(__dirname, 'support', 'proxy-host.js');
/**
 * How long requests may wait for Redis: long enough that a busy machine never makes a request
 * go on unsynchronized, but in the test of that path.
 */
const PATIENT = 10000;

let redis;
let site;
let siteServer;
let hosts = [];
let prefixes = 0;

beforeAll(async () => {
  redis = await RedisServer.start();
  siteServer = http.createServer(answerAsSite);
  // A WebSocket endpoint whose handshake sets a cookie.
  siteServer.on('upgrade', (req, socket) => {
    socket.end(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Set-Cookie: socket=1; Path=/; Max-Age=3600\r\n\r\n',
    );
  });
  await new Promise((resolve) => siteServer.listen(0, '127.0.0.1', resolve));
  site = `http://127.0.0.1:${siteServer.address().port}`;
});
afterAll(async () => {
  await new Promise((resolve) => siteServer.close(resolve));
  redis.close();
});
afterEach(async () => {
  await Promise.all(hosts.map((host) => host.kill()));
  hosts = [];
});

/**
 * The site behind the proxy: `/step?set=NAME` sets cookie NAME; `/login` sets `auth` and
 * redirects to `/home`, which only a request carrying `auth` may see; `/plain` sets nothing.
 * Each answers with the cookies it received.
 */
function answerAsSite(req, res) {
  const url = new URL(req.url, site);
  const cookies = req.headers.cookie || '';
  const headers = { 'content-type': 'text/plain' };
  if (url.pathname === '/login') {
    headers['set-cookie'] = ['auth=yes; Path=/; Max-Age=3600'];
    headers.location = '/home';
    res.writeHead(302, headers);
    res.end();
    return;
  }
  if (url.pathname === '/home') {
    const allowed = /(^|; )auth=yes(;|$)/.test(cookies);
    res.writeHead(allowed ? 200 : 401, headers);
    res.end(allowed ? 'welcome' : 'logged out');
    return;
  }
  const set = url.searchParams.get('set');
  if (set) headers['set-cookie'] = [`${set}=1; Path=/; Max-Age=3600`];
  res.writeHead(200, headers);
  res.end(`cookies: ${cookies}`);
}

/** A proxy host in a child process (see support/proxy-host.js). */
class Host {
  static async start(prefix, syncTimeout) {
    const host = new Host(prefix, syncTimeout);
    hosts.push(host);
    host.base = await host.listening;
    return host;
  }

  constructor(prefix, syncTimeout) {
    this.child = spawn(process.execPath, [HOST, redis.url, prefix, String(syncTimeout)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.listening = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`proxy host exited (${code})`)));
      readline.createInterface({ input: this.child.stdout }).once('line', (line) => {
        resolve(`http://127.0.0.1:${JSON.parse(line).port}`);
      });
    });
  }

  /** GETs `path` on this host; resolves with status, headers and body. */
  get(pathAndQuery) {
    return new Promise((resolve, reject) => {
      http
        .get(`${this.base}${pathAndQuery}`, { headers: { accept: 'text/html,*/*' } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        })
        .on('error', reject);
    });
  }

  /** Opens a WebSocket to the site through this host, for session `id`: its status. */
  upgrade(id, sitePath) {
    return h.webSocketHandshake(`${this.base}/${id}!w/${site}${sitePath}`);
  }

  /** GETs a page of the site through this host, for session `id`. */
  page(id, sitePath) {
    return this.get(`/${id}/${site}${sitePath}`);
  }

  kill() {
    if (this.child.exitCode !== null) return Promise.resolve();
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    return exited;
  }
}

/** Two hosts on one key prefix, and a session made by the first. */
async function twoHosts(syncTimeout = PATIENT) {
  prefixes++;
  const prefix = `rr${prefixes}:`;
  const [a, b] = await Promise.all([
    Host.start(prefix, syncTimeout),
    Host.start(prefix, syncTimeout),
  ]);
  const made = await a.get('/newsession');
  expect(made.status).toBe(200);
  return { a, b, id: made.body };
}

/** The names of the cookies the site received, from its answer (which hammerhead may wrap). */
function cookieNames(body) {
  const [, received = ''] = /cookies: ([^<]*)/.exec(body) || [];
  return received
    .split('; ')
    .filter(Boolean)
    .map((pair) => pair.split('=')[0]);
}

test('100 requests alternating between two hosts, each setting a cookie: each carries every cookie set before it', async () => {
  const { a, b, id } = await twoHosts();
  const lacking = [];
  for (let i = 0; i < 100; i++) {
    const host = i % 2 === 0 ? b : a;
    const answer = await host.page(id, `/step?set=c${i}`);
    expect(answer.status).toBe(200);
    const seen = new Set(cookieNames(answer.body));
    for (let j = 0; j < i; j++) if (!seen.has(`c${j}`)) lacking.push(`request ${i} lacks c${j}`);
  }
  expect(lacking).toEqual([]);
});

test('a login on one host whose redirect lands on the other stays logged in', async () => {
  const { a, b, id } = await twoHosts();
  for (let round = 0; round < 10; round++) {
    const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
    const login = await first.page(id, '/login');
    expect(login.status).toBe(302);
    const redirect = new URL(login.headers.location);
    const home = await second.get(`${redirect.pathname}${redirect.search}`);
    expect(home.status).toBe(200);
    expect(home.body).toContain('welcome');
  }
});

test('a cookie set by a WebSocket handshake on one host is sent by the next request, on the other', async () => {
  const { a, b, id } = await twoHosts();
  await b.page(id, '/plain');
  expect(await a.upgrade(id, '/socket')).toBe(101);
  expect(cookieNames((await b.page(id, '/plain')).body)).toContain('socket');
});

test("rammerhead's routes answer only once their change is stored: the other host sees it at once", async () => {
  const { a, b, id } = await twoHosts();
  expect((await b.get(`/sessionexists?id=${id}`)).body).toBe('exists');
  for (const note of ['one', 'two', 'three']) {
    expect((await a.get(`/editsession?id=${id}&note=${note}`)).body).toBe('Success');
    expect((await b.get(`/shownote?id=${id}`)).body).toBe(note);
  }
  expect((await a.get(`/deletesession?id=${id}`)).body).toBe('Success');
  expect((await b.get(`/sessionexists?id=${id}`)).body).toBe('not found');
  expect((await b.page(id, '/plain')).status).not.toBe(200);
});

test('Redis hung: a response that set a cookie goes on after its deadline, and the cookie is stored once Redis is back', async () => {
  const { a, b, id } = await twoHosts(25);
  await a.page(id, '/step?set=before');
  await b.page(id, '/plain');
  process.kill(redis.child.pid, 'SIGSTOP');
  let answered;
  try {
    answered = await a.page(id, '/step?set=during');
    // Held sessions are still served, by the other host too.
    expect((await b.page(id, '/plain')).status).toBe(200);
  } finally {
    process.kill(redis.child.pid, 'SIGCONT');
  }
  expect(answered.status).toBe(200);
  expect(cookieNames(answered.body)).toContain('before');
  await h.until(async () => cookieNames((await b.page(id, '/plain')).body).includes('during'));
});
