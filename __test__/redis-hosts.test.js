'use strict';

// Several hosts serving one session at once, each a store in a process of its own on one real
// redis-server: no cookie lost, no stale copy served, no deleted session coming back.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { RammerheadSessionRedisStore } = require('..');
const h = require('./helpers');
const { RedisServer, sessionKey } = require('./redis-server');
const HammerheadSession = require('../demo/hammerhead-session');

const HOST = path.join(__dirname, 'support', 'redis-host.js');
const GOOD_JSON = fs.readFileSync(path.join(h.GOOD, `${h.GOOD_IDS.plain}.rhfsession`), 'utf8');
const ID = 'shared';

let redis;
let prefixes = 0;
let hosts = [];

beforeAll(async () => {
  redis = await RedisServer.start({ persistence: true });
});
afterAll(() => redis.close());
afterEach(async () => {
  if (!redis.child) await redis.restart();
  await Promise.all(hosts.map((host) => host.kill()));
  hosts = [];
});

/** A store in a child process; `send(command)` resolves with its answer. */
class Host {
  constructor(prefix) {
    this.child = spawn(process.execPath, [HOST, redis.url, prefix], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.answers = [];
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.answers.shift()(JSON.parse(line));
    });
  }

  send(command) {
    return new Promise((resolve, reject) => {
      this.answers.push((answer) =>
        answer.error ? reject(new Error(answer.error.message)) : resolve(answer.ok),
      );
      this.child.stdin.write(`${JSON.stringify(command)}\n`);
    });
  }

  kill() {
    if (this.child.exitCode !== null) return Promise.resolve();
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    return exited;
  }
}

function startHosts(count) {
  const prefix = `h${++prefixes}:`;
  const started = Array.from({ length: count }, () => new Host(prefix));
  hosts.push(...started);
  return { prefix, hosts: started };
}

/** The cookies a store loading the session now, from nothing, sees. */
function freshCookies(prefix) {
  const store = new RammerheadSessionRedisStore({
    redisUrl: redis.url,
    keyPrefix: prefix,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
  });
  try {
    const session = store.get(ID);
    return session ? session.cookies.getClientString('http://site.test/') : null;
  } finally {
    store.close();
  }
}

const names = (cookieString) => (cookieString ? cookieString.split('; ').sort() : []);

/** Waits until every host's copy sends exactly the cookies `want` (sorted). */
function everyHostSends(group, want) {
  return h.until(async () => {
    for (const host of group) {
      const sent = names(await host.send({ do: 'cookies', id: ID }));
      if (JSON.stringify(sent) !== JSON.stringify(want)) return false;
    }
    return true;
  });
}

/** Every host writes its changes, until none is left unwritten anywhere. */
async function settle(group) {
  await h.until(async () => {
    const stats = [];
    for (const host of group) {
      await host.send({ do: 'write' });
      stats.push(await host.send({ do: 'stats' }));
    }
    return stats.every((s) => s.unwritten === 0 && s.writesPending === 0);
  });
}

test('cookies set on three hosts at the same moment all arrive, and a deleted one stays deleted', async () => {
  const { prefix, hosts: group } = startHosts(3);
  await group[0].send({ do: 'add', id: ID, json: GOOD_JSON });
  const expected = new Set();
  for (let round = 0; round < 15; round++) {
    await Promise.all(
      group.map((host, i) => {
        expected.add(`h${i}r${round}=v`);
        return host.send({ do: 'setCookie', id: ID, cookie: `h${i}r${round}=v` });
      }),
    );
    // Each host writes at once, racing the others.
    await Promise.all(group.map((host) => host.send({ do: 'write' })));
  }
  await group[1].send({ do: 'setCookie', id: ID, cookie: 'h0r3=; Max-Age=0' });
  expected.delete('h0r3=v');
  await settle(group);
  const want = Array.from(expected).sort();
  await everyHostSends(group, want);
  expect(names(freshCookies(prefix))).toEqual(want);
  const merged = await Promise.all(group.map((host) => host.send({ do: 'stats' })));
  expect(merged.reduce((sum, s) => sum + s.merged, 0)).toBeGreaterThan(0);
});

test('a cookie set through hammerhead on one host is in the copy another host holds, with no round run', async () => {
  const {
    hosts: [a, b],
  } = startHosts(2);
  await a.send({ do: 'add', id: ID, json: GOOD_JSON });
  expect(await b.send({ do: 'cookies', id: ID })).toBe('');
  // Rounds run only when asked: the write is the one a cookie change brings about.
  await a.send({ do: 'setCookie', id: ID, cookie: 'fresh=1' });
  await h.until(async () => (await b.send({ do: 'cookies', id: ID })) === 'fresh=1');
  expect((await b.send({ do: 'stats' })).refreshed).toBeGreaterThan(0);
});

test('a session deleted on one host is gone on all, and a later write from another does not bring it back', async () => {
  const {
    prefix,
    hosts: [a, b],
  } = startHosts(2);
  await a.send({ do: 'add', id: ID, json: GOOD_JSON });
  await b.send({ do: 'setCookie', id: ID, cookie: 'late=1' });
  expect(await a.send({ do: 'delete', id: ID })).toBe(true);
  // b had a change not yet written when the delete came.
  await b.send({ do: 'write' });
  await h.until(async () => (await b.send({ do: 'has', id: ID })) === false);
  expect(freshCookies(prefix)).toBeNull();
  expect(redis.cli('EXISTS', sessionKey(prefix, ID))).toBe('0');
});

test('connections killed and the server restarted during the rounds: nothing lost, no stale copy served', async () => {
  const { prefix, hosts: group } = startHosts(2);
  await group[0].send({ do: 'add', id: ID, json: GOOD_JSON });
  const expected = [];
  for (let round = 0; round < 8; round++) {
    await Promise.all(
      group.map((host, i) => {
        expected.push(`k${i}r${round}=v`);
        return host.send({ do: 'setCookie', id: ID, cookie: `k${i}r${round}=v` });
      }),
    );
    if (round === 2) redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    if (round === 4) redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    if (round === 6) await redis.restart();
    await Promise.all(group.map((host) => host.send({ do: 'write' }).catch(() => {})));
  }
  await settle(group);
  const want = expected.sort();
  await everyHostSends(group, want);
  expect(names(freshCookies(prefix))).toEqual(want);
});
