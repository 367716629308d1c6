'use strict';

// A Redis Cluster and a Sentinel group losing a master: the store keeps answering from memory,
// finds the promoted replica, and every session and cookie replicated before the loss is still
// there for every host. Real servers, killed with SIGKILL.

const fs = require('fs');
const path = require('path');
const { RammerheadSessionRedisStore } = require('..');
const h = require('./helpers');
const { RedisCluster } = require('./support/redis-cluster');
const { RedisSentinelGroup } = require('./support/redis-sentinel');
const HammerheadSession = require('../demo/hammerhead-session');

jest.setTimeout(120000);

const GOOD_JSON = fs.readFileSync(path.join(h.GOOD, `${h.GOOD_IDS.plain}.rhfsession`), 'utf8');
const SITE = 'http://site.test/';
const SESSIONS = 60;

let opened = [];
afterEach(() => {
  for (const store of opened) {
    try {
      store.close();
    } catch {
      // sessions left unsaved on purpose
    }
  }
  opened = [];
});

function open(redisUrl, prefix) {
  const store = new RammerheadSessionRedisStore({
    redisUrl,
    keyPrefix: prefix,
    sessionClass: HammerheadSession,
    staleCleanupOptions: null,
    logger: h.recordingLogger(),
    commandTimeout: 300,
    connectTimeout: 500,
  });
  opened.push(store);
  return store;
}

const cookieOf = (session) => session.cookies.getClientString(SITE);

/** Sessions with a cookie each, stored through `store`, and what each cookie reads. */
async function storeSessions(store) {
  const expected = new Map();
  for (let i = 0; i < SESSIONS; i++) {
    const id = `s${i}`;
    store.addSerializedSession(id, GOOD_JSON);
    store.get(id).cookies.setByServer(SITE, [`n=${i}; Path=/`]);
    expected.set(id, `n=${i}`);
  }
  await store.writeChanges();
  await store.whenWritten();
  return expected;
}

/** Every session, loaded by a store that never held it, has its cookie. */
async function expectAllServed(redisUrl, prefix, expected) {
  const fresh = open(redisUrl, prefix);
  await h.until(() => fresh.stats().available, { timeout: 30000 });
  for (const [id, cookie] of expected) {
    const session = fresh.get(id);
    expect(session && cookieOf(session)).toBe(cookie);
  }
}

/**
 * Kills a master under load: one host keeps reading its held sessions and setting cookies
 * throughout; returns how many of its reads were answered, and the cookies it set.
 */
async function underLoad(store, ids, kill) {
  let stop = false;
  let answered = 0;
  let missed = 0;
  const set = new Map();
  const load = (async () => {
    for (let turn = 0; !stop; turn++) {
      const id = ids[turn % ids.length];
      const session = store.get(id);
      if (session) {
        answered++;
        session.cookies.setByServer(SITE, [`late=${turn}; Path=/`]);
        set.set(id, `late=${turn}`);
      } else {
        missed++;
      }
      await h.sleep(2);
    }
  })();
  try {
    await kill();
    // Back: the store takes writes again.
    await h.until(() => store.stats().available, { timeout: 30000 });
  } finally {
    stop = true;
    await load;
  }
  await store.writeChanges();
  await store.whenWritten();
  return { answered, missed, set };
}

/** What `store` has written since the kill reaches a host that never held the sessions. */
function withLateCookies(expected, set) {
  const both = new Map(expected);
  for (const [id, late] of set) both.set(id, `${expected.get(id)}; ${late}`);
  return both;
}

describe('a Redis Cluster of 3 masters and 3 replicas', () => {
  let cluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  });
  afterAll(() => cluster && cluster.close());

  test('spreads sessions over every master', async () => {
    const store = open(cluster.url, 'spread:');
    for (let i = 0; i < 600; i++) store.addSerializedSession(`spread${i}`, GOOD_JSON);
    await store.writeChanges();
    await store.whenWritten();
    const counts = (await cluster.keysPerMaster('spread:*:session:*')).map((m) => m.count);
    expect(counts.length).toBe(3);
    expect(counts.reduce((a, b) => a + b)).toBe(600);
    for (const count of counts) expect(count).toBeLessThan(600 * 0.45);
    expect(store.keys().length).toBe(600);
  });

  test('a master killed under load: requests are answered, the promoted replica is found, nothing replicated is lost', async () => {
    const prefix = 'failover:';
    const store = open(cluster.url, prefix);
    const expected = await storeSessions(store);
    await replicated(cluster);
    const other = open(cluster.url, prefix);
    await expectAnnounced(store, other, 's1');
    expected.set('s1', cookieOf(store.get('s1')));
    // Replicas hold no scripts (a script cache is each server's own): the promoted one is
    // given them again.
    for (const node of cluster.nodes) {
      if (node.child && node.cli('ROLE').startsWith('slave')) node.cli('SCRIPT', 'FLUSH');
    }
    // The first seed of the URL: the store must find the cluster through the others.
    const victim = cluster.nodes[0];
    expect((await cluster.masters()).map((m) => m.server)).toContain(victim);
    const { answered, missed, set } = await underLoad(store, [...expected.keys()], () =>
      cluster.killMaster(victim),
    );
    expect(missed).toBe(0);
    expect(answered).toBeGreaterThan(0);
    expect(store.stats().available).toBe(true);
    await expectAllServed(cluster.url, prefix, withLateCookies(expected, set));
    // Announcements still reach the other host, whichever node its subscription was on.
    await expectAnnounced(store, other, 's2');
  });

  test('slots moved to another master are followed', async () => {
    const prefix = 'moved:';
    const store = open(cluster.url, prefix);
    const expected = await storeSessions(store);
    const [from, to] = await cluster.masters();
    const moved = cluster.nodes[cluster.nodes.indexOf(to.server)];
    const out = from.server.cli(
      '--cluster',
      'reshard',
      `127.0.0.1:${from.server.port}`,
      '--cluster-from',
      from.id,
      '--cluster-to',
      to.id,
      '--cluster-slots',
      '2000',
      '--cluster-yes',
    );
    expect(out).toMatch(/Moving slot/);
    expect(moved.cli('DBSIZE')).not.toBe('0');
    await expectAllServed(cluster.url, prefix, expected);
    store.get('s3').cookies.setByServer(SITE, ['after=1; Path=/']);
    await store.writeChanges();
    await store.whenWritten();
    expect(store.stats().keptInMemory).toBe(0);
    expected.set('s3', `${expected.get('s3')}; after=1`);
    await expectAllServed(cluster.url, prefix, expected);
  });
  // Last: it restarts every node, and without persistence they come back empty.
  test('a store started while the cluster is down connects once it is up', async () => {
    for (const node of cluster.nodes) await node.stop();
    const store = open(cluster.url, 'late:');
    expect(store.stats().available).toBe(false);
    expect(store.logger.lines.warn.join('\n')).toMatch(/cannot use redis\+cluster:\/\//);
    for (const node of cluster.nodes) await node.restart();
    await h.until(() => store.stats().available, { timeout: 30000 });
    store.addSerializedSession('late', GOOD_JSON);
    expect(open(cluster.url, 'late:').get('late')).toBeDefined();
  });
});

describe('a master, a replica and 3 Sentinels', () => {
  let group;
  beforeAll(async () => {
    group = await RedisSentinelGroup.start({ password: 'se:cr@t' });
  });
  afterAll(() => group && group.close());

  test('the store asks the sentinels for the master, and again after a failover', async () => {
    const prefix = 'sentinel:';
    const store = open(group.url, prefix);
    const expected = await storeSessions(store);
    const other = open(group.url, prefix);
    await expectAnnounced(store, other, 's1');
    expected.set('s1', cookieOf(store.get('s1')));
    await h.until(() => group.replica.cli('DBSIZE') === group.master.cli('DBSIZE'));
    const before = store.stats().connects;
    const { answered, missed, set } = await underLoad(store, [...expected.keys()], () =>
      group.killMaster(),
    );
    expect(missed).toBe(0);
    expect(answered).toBeGreaterThan(0);
    expect(store.stats().connects).toBeGreaterThan(before);
    await expectAllServed(group.url, prefix, withLateCookies(expected, set));
    await expectAnnounced(store, other, 's2');
  });

  test('a demoted master answering READONLY sends the store back to the sentinels', async () => {
    // The server killed by the test before comes back, as the replica.
    if (group.killed) await group.restartOld({ asReplica: true });
    const prefix = 'demoted:';
    const store = open(group.url, prefix);
    const expected = await storeSessions(store);
    // A failover the sentinels make themselves: the old master stays up, as a replica.
    const old = group.master;
    group.sentinels[0].cli('SENTINEL', 'FAILOVER', 'mymaster');
    await h.until(() => old.cli('ROLE').startsWith('slave'), { timeout: 30000 });
    store.get('s0').cookies.setByServer(SITE, ['after=1; Path=/']);
    await h.until(
      async () => {
        await store.writeChanges();
        await store.whenWritten();
        return !store.stats().keptInMemory && store.stats().available;
      },
      { timeout: 30000 },
    );
    expected.set('s0', `${expected.get('s0')}; after=1`);
    await expectAllServed(group.url, prefix, expected);
  });

  test('a store started while no sentinel answers connects once one does', async () => {
    for (const sentinel of group.sentinels) await sentinel.stop();
    const store = open(group.url, 'late:');
    expect(store.stats().available).toBe(false);
    expect(store.logger.lines.warn.join('\n')).toMatch(/cannot use redis\+sentinel:\/\/:\*\*\*@/);
    await group.sentinels[1].restart();
    await h.until(() => store.stats().available, { timeout: 30000 });
    store.addSerializedSession('late', GOOD_JSON);
    expect(open(group.url, 'late:').get('late')).toBeDefined();
  });
});

/**
 * A change made through `writer` reaches `reader`, which holds the session already: it hears of
 * it from the announcement, not from a load.
 */
async function expectAnnounced(writer, reader, id) {
  // A host idle through a failover finds the new master at its first request.
  await h.until(() => reader.get(id), { timeout: 10000 });
  const cookie = `announced=${Math.random().toString(36).slice(2)}`;
  writer.get(id).cookies.setByServer(SITE, [`${cookie}; Path=/`]);
  await writer.writeChanges();
  await writer.whenWritten();
  await h.until(() => cookieOf(reader.get(id)).includes(cookie), { timeout: 10000 });
}

/** Every replica of the cluster holds what its master does. */
async function replicated(cluster) {
  await h.until(
    async () => {
      for (const { server } of await cluster.masters()) {
        const replicas = cluster.nodes.filter(
          (node) => node.child && node !== server && node.cli('ROLE').startsWith('slave'),
        );
        for (const replica of replicas) {
          const [, host, port] = replica.cli('ROLE').split('\n');
          if (
            Number(port) === server.port &&
            host &&
            replica.cli('DBSIZE') !== server.cli('DBSIZE')
          )
            return false;
        }
      }
      return true;
    },
    { timeout: 10000 },
  );
}
