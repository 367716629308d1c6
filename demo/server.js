#!/usr/bin/env node
'use strict';

// A small real web proxy on testcafe-hammerhead whose sessions live in a
// RammerheadSessionFileCache, or with --redis in a RammerheadSessionRedisStore. It also serves a tiny local site, so cookies can be seen surviving
// a restart without any internet access.

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { Proxy } = require('testcafe-hammerhead');
const { RammerheadSessionFileCache, RammerheadSessionRedisStore } = require('..');
const HammerheadSession = require('./hammerhead-session');

const USAGE = `Usage: npm start -- [--port N] [--host H] [--dir PATH] [--redis URL]

  --port N    proxy port (default 8080, or PORT); hammerhead also uses N+1; 0 picks free ports
  --host H    address to bind (default 127.0.0.1, or HOST)
  --dir PATH  sessions directory (default ./sessions, or SESSIONS_DIR); created if missing
  --redis URL keep the sessions in Redis (redis://host:port) instead; PATH then only holds
              the demo session's id
`;

function parseArgs(argv, env) {
  const options = {
    port: Number(env.PORT || 8080),
    host: env.HOST || '127.0.0.1',
    dir: env.SESSIONS_DIR || 'sessions',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return { help: true };
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--port') options.port = Number(value);
    else if (flag === '--host') options.host = value;
    else if (flag === '--dir') options.dir = value;
    else if (flag === '--redis') options.redis = value;
    else throw new Error(`unknown option ${flag}`);
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65534) {
    throw new Error(`bad port ${options.port}`);
  }
  return options;
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address().port));
  });
}

/** Two consecutive free ports, as hammerhead wants a second one beside the first. */
async function freePortPair(host) {
  for (;;) {
    const probe = http.createServer();
    const port = await listen(probe, 0, host);
    await new Promise((resolve) => probe.close(resolve));
    if (port >= 65535) continue;
    const second = http.createServer();
    const ok = await listen(second, port + 1, host).then(
      () => true,
      () => false,
    );
    if (ok) {
      await new Promise((resolve) => second.close(resolve));
      return port;
    }
  }
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;
}

/** The local site: shows what it is, counts visits in a cookie, and echoes cookies back. */
function createSite() {
  return http.createServer((req, res) => {
    const cookies = req.headers.cookie || '';
    if (req.url === '/set-cookie') {
      const visits = Number((/demo_visits=(\d+)/.exec(cookies) || [])[1] || 0) + 1;
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'set-cookie': `demo_visits=${visits}; Path=/; Max-Age=31536000`,
      });
      res.end(
        page(
          'Visits',
          `<p>Visit number <b id="visits">${visits}</b>.</p><p><a href="/">back</a></p>`,
        ),
      );
    } else if (req.url === '/cookies') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`cookies: ${cookies}`);
    } else {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        page(
          'rammerhead-session-store demo',
          '<h1>Proxied through a stored session</h1>' +
            '<p>This page comes through the proxy. <a href="/set-cookie">Count a visit</a> ' +
            'sets a cookie kept in the session file; restart the server and the count goes on.</p>' +
            '<p><a href="/cookies">Cookies the site receives</a></p>',
        ),
      );
    }
  });
}

/** The demo session's id, kept beside the sessions so a restart reuses it. */
function demoSession(store, dir) {
  const idFile = path.join(dir, 'demo-session-id');
  let id = fs.existsSync(idFile) ? fs.readFileSync(idFile, 'utf8').trim() : '';
  if (!id || !store.has(id)) {
    id = crypto.randomUUID().replace(/-/g, '');
    store.add(id);
    fs.writeFileSync(idFile, `${id}\n`);
  }
  return id;
}

async function start(options) {
  const dir = path.resolve(options.dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const store = options.redis
    ? new RammerheadSessionRedisStore({ redisUrl: options.redis, sessionClass: HammerheadSession })
    : new RammerheadSessionFileCache({ saveDirectory: dir, sessionClass: HammerheadSession });
  const site = createSite();
  const sitePort = await listen(site, 0, options.host);
  const port = options.port === 0 ? await freePortPair(options.host) : options.port;
  const proxy = new Proxy();
  proxy.start({ hostname: options.host, port1: port, port2: port + 1 });
  store.attachToProxy(proxy);
  const id = demoSession(store, dir);

  const base = `http://${options.host}:${port}`;
  const info = {
    proxy: base,
    session: id,
    site: `http://${options.host}:${sitePort}/`,
    sessionLink: `${base}/${id}/http://${options.host}:${sitePort}/`,
    directory: dir,
    sessionsIn: options.redis ? store.redisUrl : dir,
  };
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    proxy.close();
    site.close();
    store.close();
  };
  return { info, close };
}

function printReady(info) {
  console.log(`rammerhead-session-store demo proxy on ${info.proxy}`);
  console.log(`sessions in ${info.sessionsIn}`);
  console.log('');
  console.log(`Open this link to browse the built-in site through the stored session:`);
  console.log(`  ${info.sessionLink}`);
  console.log(`Any address works after ${info.proxy}/${info.session}/ , for instance`);
  console.log(`  ${info.proxy}/${info.session}/https://example.com/`);
  console.log('Ctrl-C saves the session and stops.');
  console.log(`READY ${JSON.stringify(info)}`);
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`demo: ${error.message}\n${USAGE}`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return;
  }
  const server = await start(options);
  printReady(server.info);
  const stop = () => {
    server.close();
    console.log('sessions saved, bye');
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  console.error(`demo: ${error.message}`);
  process.exit(1);
});
