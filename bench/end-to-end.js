'use strict';

// The end-to-end figure of `npm run bench`: a real hammerhead proxy on a store holding N/2
// sessions in use (and, in a directory, N/2 stale ones), a local site behind it, a few clients
// requesting pages through sessions picked at random for some seconds, a tenth of their
// requests making a new session (`/newsession`) and asking a page through it, a stale cleanup
// inside that window.
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { percentile } = require('./measure');

const CLIENTS = 8;
/** One request in this many makes a new session, as users arriving do. */
const NEW_SESSION_EVERY = 10;
const DAY = 24 * 60 * 60 * 1000;

function listen(server) {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(server.address().port)),
  );
}

/** Two consecutive free ports, as hammerhead wants a second one beside the first. */
async function freePortPair() {
  for (;;) {
    const probe = http.createServer();
    const port = await listen(probe);
    await new Promise((resolve) => probe.close(resolve));
    const second = http.createServer();
    const free = await new Promise((resolve) => {
      second.once('error', () => resolve(false));
      second.listen(port + 1, '127.0.0.1', () => resolve(true));
    });
    if (free) {
      await new Promise((resolve) => second.close(resolve));
      return port;
    }
  }
}

/** A page that sets a new cookie value on one visit in `cookieEvery`, as sites do. */
function createSite(cookieEvery) {
  let visits = 0;
  return http.createServer((req, res) => {
    const headers = { 'content-type': 'text/html' };
    visits++;
    if (visits % cookieEvery === 0) headers['set-cookie'] = `visit=${visits}; Path=/`;
    res.writeHead(200, headers);
    res.end('<html><body><p>hello</p></body></html>');
  });
}

/** Resolves with `[status, body]`. */
function get(agent, url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers: { accept: 'text/html' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve([res.statusCode, body]));
      })
      .on('error', reject);
  });
}

/**
 * Runs the proxy on `store` ("file", "redis" with the sessions under "e2e:" on `redisUrl`, or
 * the path of rammerhead's FileCache) over the sessions `fresh` (files in `dir`), the site
 * setting a cookie on one page in `cookieEvery`, and returns { rps, p50, p99, max,
 * firstAnswer } (milliseconds).
 */
async function endToEnd({
  store,
  dir,
  fresh,
  sessionClass,
  seconds,
  random,
  redisUrl = '',
  cookieEvery = 1,
}) {
  const site = createSite(cookieEvery);
  const sitePort = await listen(site);
  const port = await freePortPair();
  const base = `http://127.0.0.1:${port}`;
  const page = (id) => `${base}/${id}/http://127.0.0.1:${sitePort}/page`;
  const started = process.hrtime.bigint();
  const child = spawn(
    process.execPath,
    [
      path.join(__dirname, 'proxy-process.js'),
      store,
      dir,
      String(port),
      sessionClass,
      String((seconds * 1000) / 2),
      redisUrl,
    ],
    { stdio: 'inherit' },
  );
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
    let firstAnswer;
    for (;;) {
      const [status] = await get(agent, page(fresh[0])).catch(() => [0]);
      if (status === 200) {
        firstAnswer = elapsed();
        break;
      }
      if (elapsed() > 120000) throw new Error(`the proxy on ${store} did not answer in 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const latencies = [];
    const until = elapsed() + seconds * 1000;
    const timed = async (url) => {
      const start = elapsed();
      const [status, body] = await get(agent, url);
      if (status !== 200) throw new Error(`status ${status} for ${url} on ${store}`);
      latencies.push(elapsed() - start);
      return body;
    };
    const client = async () => {
      while (elapsed() < until) {
        if (random() * NEW_SESSION_EVERY < 1) {
          await timed(page(await timed(`${base}/newsession`)));
        } else {
          await timed(page(fresh[Math.floor(random() * fresh.length)]));
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    agent.destroy();
    latencies.sort((a, b) => a - b);
    return {
      rps: latencies.length / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1],
      firstAnswer,
    };
  } finally {
    child.kill('SIGKILL');
    site.closeAllConnections();
    site.close();
  }
}

/** N session files from `template`, every other one unused for two days. */
function sessionFiles(dir, ids, template) {
  const data = JSON.parse(template);
  const now = Date.now();
  ids.forEach((id, i) => {
    const at = i % 2 === 0 ? now : now - 2 * DAY;
    data.data.createdAt = at;
    data.data.lastUsed = at;
    fs.writeFileSync(path.join(dir, `${id}.rhfsession`), JSON.stringify(data));
  });
  return ids.filter((_, i) => i % 2 === 0);
}

module.exports = { endToEnd, sessionFiles };
