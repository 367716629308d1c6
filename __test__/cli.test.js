'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');
const { RedisServer, sessionKey, indexKey } = require('./redis-server');
const { RedisCluster } = require('./support/redis-cluster');
const { RedisSentinelGroup } = require('./support/redis-sentinel');

const CLI = path.join(__dirname, '..', 'bin', 'rammerhead-sessions.js');
const DAY = 24 * 60 * 60 * 1000;

function cli(args, input) {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Runs `command DIR ID` with the ID's bytes written as a bash $'…' string, such as `x\\xff`. */
function cliWithRawId(command, dir, escapedId, input) {
  const script = `exec "$0" "$1" "$2" "$3" $'${escapedId}'`;
  const args = ['-c', script, process.execPath, CLI, command, dir];
  const run = spawnSync('bash', args, { encoding: 'utf8', input });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function json(args) {
  const run = cli([...args, '--json']);
  return { ...run, result: JSON.parse(run.stdout) };
}

/** 3000 sessions (1000 fresh, 1000 two days old, 1000 ten days old) beside the broken files. */
function bigDirectory() {
  const dir = h.copyFixtures(h.BAD);
  const now = Date.now();
  for (let i = 0; i < 3000; i++) {
    const at = now - [0, 2, 10][i % 3] * DAY;
    const body = { data: { createdAt: at, lastUsed: at }, serializedCookieJar: '{}' };
    fs.writeFileSync(path.join(dir, `s${i}.rhfsession`), JSON.stringify(body));
  }
  return dir;
}

const corruptIds = () => h.badIds().filter((id) => !id.endsWith('dirx'));
const sessionNames = (dir) => h.listed(dir).filter((name) => name.endsWith('.rhfsession'));

describe('rammerhead-sessions', () => {
  const dir = bigDirectory();

  test('stats counts sessions, size, ages, stale and unreadable files', () => {
    const { status, result } = json(['stats', dir, '--stale-timeout', '3d']);
    expect(status).toBe(0);
    expect(result.sessions).toBe(3000);
    expect(result.unreadable).toBe(5);
    expect(result.stale).toBe(1000);
    expect(result.totalBytes).toBeGreaterThan(3000 * 50);
    expect(result.ageByLastUse['under 1 hour']).toBe(1000);
    expect(result.ageByLastUse['under 7 days']).toBe(1000);
    expect(result.ageByLastUse['under 30 days']).toBe(1000);
    expect(json(['stats', dir, '--stale-timeout', '1d']).result.stale).toBe(2000);
    const human = cli(['stats', dir]);
    expect(human.stdout).toContain('3000 sessions');
    expect(human.stdout).toContain('unreadable files: 5');
  });

  test('verify lists exactly the unreadable files and exits 1', () => {
    const { status, result } = json(['verify', dir]);
    expect(status).toBe(1);
    expect(result.unreadable.map((u) => u.id).sort()).toEqual(corruptIds().sort());
    expect(cli(['verify', h.copyFixtures(h.GOOD)]).status).toBe(0);
  });

  test('prune is a dry run unless --yes, then deletes exactly the stale sessions', () => {
    const copy = h.tempDir();
    fs.cpSync(dir, copy, { recursive: true });
    const before = h.listed(copy);
    const dry = json(['prune', copy, '--stale-timeout', '3d']);
    expect(dry.status).toBe(0);
    expect(dry.result).toMatchObject({ dryRun: true, expired: 1000, removed: 0 });
    expect(h.listed(copy)).toEqual(before);
    expect(cli(['prune', copy, '--stale-timeout', '3d']).stdout).toContain('dry run');

    const done = json(['prune', copy, '--stale-timeout', '3d', '--yes']);
    expect(done.result).toMatchObject({ dryRun: false, removed: 1000, removedCorrupt: 0 });
    expect(sessionNames(copy)).toHaveLength(3000 - 1000 + 6);
    const withCorrupt = json(['prune', copy, '--stale-timeout', '1d', '--delete-corrupt', '--yes']);
    expect(withCorrupt.result).toMatchObject({ removed: 1000, removedCorrupt: 5 });
    expect(h.listed(copy)).toEqual(
      ['0000000000000000000000000000dirx.rhfsession', 'README.txt', 'notes.rhfsession.tmp']
        .concat(Array.from({ length: 1000 }, (_, i) => `s${i * 3}.rhfsession`))
        .sort(),
    );
  });

  test('prune removes temporary files of dead writers and day-old ones of live ones, no others', () => {
    const copy = h.tempDir();
    const live = process.pid;
    const dead = 2147483646; // above any pid Linux hands out
    const temps = {
      deadOld: `.rhfs-${dead}-1.tmp`,
      deadFresh: `.rhfs-${dead}-2.tmp`,
      liveHourOld: `.rhfs-${live}-3.tmp`,
      liveDayOld: `.rhfs-${live}-4.tmp`,
    };
    const age = { deadOld: 2 * 60e3, deadFresh: 0, liveHourOld: 60 * 60e3, liveDayOld: DAY + 60e3 };
    for (const [key, name] of Object.entries(temps)) {
      fs.writeFileSync(path.join(copy, name), 'partial');
      const at = new Date(Date.now() - age[key]);
      fs.utimesSync(path.join(copy, name), at, at);
    }
    expect(json(['prune', copy, '--stale-timeout', '3d']).result.temporariesRemoved).toBe(0);
    const done = json(['prune', copy, '--stale-timeout', '3d', '--yes']);
    expect(done.result.temporariesRemoved).toBe(2);
    expect(fs.readdirSync(copy).sort()).toEqual([temps.deadFresh, temps.liveHourOld].sort());
  });

  test('--max-to-live counts from creation', () => {
    const copy = h.tempDir();
    fs.cpSync(dir, copy, { recursive: true });
    const result = json(['prune', copy, '--stale-timeout', 'none', '--max-to-live', '5d']).result;
    expect(result.expired).toBe(1000);
  });

  test('export and import round-trip a session, validating what they read', () => {
    const good = h.copyFixtures(h.GOOD);
    const id = h.GOOD_IDS.cookiesAndLocalStorage;
    const exported = cli(['export', good, id]);
    expect(exported.status).toBe(0);
    const original = fs.readFileSync(path.join(h.GOOD, `${id}.rhfsession`), 'utf8');
    expect(JSON.parse(exported.stdout)).toEqual(JSON.parse(original));

    const imported = cli(['import', good, 'copied'], exported.stdout);
    expect(imported.status).toBe(0);
    expect(imported.stderr).toContain('imported copied');
    const file = path.join(good, 'copied.rhfsession');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(JSON.parse(original));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    expect(cli(['import', good, 'broken'], '{"data":').status).toBe(3);
    expect(cli(['import', good, 'broken'], '{"data":{}}').status).toBe(3);
    expect(fs.existsSync(path.join(good, 'broken.rhfsession'))).toBe(false);
    expect(cli(['import', good, '../escape'], original).status).toBe(2);
    // Bytes that are not UTF-8 reach the program as U+FFFD: refused, not mapped to a session.
    expect(cliWithRawId('export', good, 'x\\xed\\xa0\\x80').status).toBe(2);
    expect(cliWithRawId('import', good, 'x\\xff', original).status).toBe(2);
    expect(fs.readdirSync(good).filter((name) => name.startsWith('x'))).toEqual([]);
    expect(cli(['export', dir, '0000000000000000000000000000trnc']).status).toBe(3);
    expect(cli(['export', good, 'missing']).status).toBe(3);
  });

  test('bad arguments exit 2 and unreadable directories exit 3, with a clear message', () => {
    for (const args of [
      [],
      ['frobnicate', dir],
      ['stats'],
      ['stats', dir, '--bogus'],
      ['prune', dir],
      ['prune', dir, '--stale-timeout', 'soon'],
      ['export', dir],
    ]) {
      const run = cli(args);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/^rammerhead-sessions: /);
    }
    const missing = cli(['stats', path.join(dir, 'missing')]);
    expect(missing.status).toBe(3);
    expect(missing.stderr).toContain('ENOENT');
    expect(cli(['verify', path.join(dir, 'README.txt')]).status).toBe(3);
    const help = cli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: rammerhead-sessions');
  });
});

describe('rammerhead-sessions on Redis', () => {
  let redis;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis.close());

  const files = (dir) =>
    Object.fromEntries(
      sessionNames(dir).map((name) => [name, fs.readFileSync(path.join(dir, name), 'utf8')]),
    );

  test('copy moves a directory to Redis and back, every session byte for byte', () => {
    const source = h.copyFixtures(h.GOOD);
    const there = cli(['copy', source, redis.url, '--prefix', 'moved:']);
    expect(there.stderr).toBe('');
    expect(there.status).toBe(0);
    expect(there.stdout).toContain('copied 3 of 3 sessions');
    for (const [name, text] of Object.entries(files(source))) {
      expect(redis.cli('GET', sessionKey('moved:', name.replace('.rhfsession', '')))).toBe(text);
    }
    const back = h.tempDir();
    expect(json(['copy', redis.url, back, '--prefix', 'moved:']).result).toMatchObject({
      listed: 3,
      copied: 3,
      failed: [],
    });
    expect(files(back)).toEqual(files(source));
  });

  test('copy leaves out what cannot be read, says which, and exits 1', () => {
    const source = h.copyFixtures(h.BAD);
    fs.copyFileSync(
      path.join(h.GOOD, `${h.GOOD_IDS.cookiesAndLocalStorage}.rhfsession`),
      path.join(source, 'good.rhfsession'),
    );
    const run = json(['copy', source, redis.url, '--prefix', 'bad:']);
    expect(run.status).toBe(1);
    expect(run.result.copied).toBe(1);
    expect(run.result.failed.map((f) => f.id).sort()).toEqual(corruptIds().sort());
    expect(redis.cli('ZRANGE', indexKey('bad:', 'good'), '0', '-1')).toBe('good');
  });

  test('stats, verify, prune, export and import work on Redis as on a directory', () => {
    const now = Date.now();
    for (let i = 0; i < 30; i++) {
      const at = now - [0, 2, 10][i % 3] * DAY;
      const body = { data: { createdAt: at, lastUsed: at }, serializedCookieJar: '{}' };
      const imported = cli(
        ['import', redis.url, `s${i}`, '--prefix', 'ops:'],
        JSON.stringify(body),
      );
      expect(imported.status).toBe(0);
    }
    redis.cli('SET', sessionKey('ops:', 'broken'), '{"data":');
    redis.cli('ZADD', indexKey('ops:', 'broken'), '+inf', 'broken');
    const stats = json(['stats', redis.url, '--prefix', 'ops:', '--stale-timeout', '3d']).result;
    expect(stats).toMatchObject({ sessions: 30, stale: 10, unreadable: 1 });
    const verify = json(['verify', redis.url, '--prefix', 'ops:']);
    expect(verify.status).toBe(1);
    expect(verify.result.unreadable.map((u) => [u.id, u.code])).toEqual([
      ['broken', 'ERR_CORRUPT_SESSION'],
    ]);
    const dry = json(['prune', redis.url, '--prefix', 'ops:', '--stale-timeout', '3d']);
    expect(dry.result).toMatchObject({ dryRun: true, expired: 10, removed: 0 });
    const done = json([
      'prune',
      redis.url,
      '--prefix',
      'ops:',
      '--stale-timeout',
      '3d',
      '--delete-corrupt',
      '--yes',
    ]);
    expect(done.result).toMatchObject({ expired: 10, removed: 10, removedCorrupt: 1, failed: [] });
    expect(redis.cli('EXISTS', sessionKey('ops:', 'broken'))).toBe('0');
    expect(json(['stats', redis.url, '--prefix', 'ops:']).result.sessions).toBe(20);
    const exported = cli(['export', redis.url, 's0', '--prefix', 'ops:']);
    expect(exported.stdout.trim()).toBe(redis.cli('GET', sessionKey('ops:', 's0')));
    expect(cli(['export', redis.url, 'missing', '--prefix', 'ops:']).status).toBe(3);
    expect(cli(['import', redis.url, '../x', '--prefix', 'ops:'], exported.stdout).status).toBe(2);
  });

  test('an unreachable Redis exits 3 with a clear message', () => {
    const run = cli(['stats', 'redis://127.0.0.1:1']);
    expect(run.status).toBe(3);
    expect(run.stderr).toContain('ERR_REDIS_UNAVAILABLE');
  });
});

describe('rammerhead-sessions on a Redis Cluster and behind Sentinels', () => {
  let cluster;
  let group;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
    group = await RedisSentinelGroup.start();
  }, 90000);
  afterAll(async () => {
    for (const running of [cluster, group]) if (running) await running.close();
  });

  test.each([
    ['a cluster', () => cluster.url],
    ['sentinels', () => group.url],
  ])('every command works on %s, and copy between them', (_name, urlOf) => {
    const url = urlOf();
    const prefix = `ops-${url === cluster.url ? 'cluster' : 'sentinel'}:`;
    const now = Date.now();
    for (let i = 0; i < 30; i++) {
      const at = now - [0, 2, 10][i % 3] * DAY;
      const body = { data: { createdAt: at, lastUsed: at }, serializedCookieJar: '{}' };
      const imported = cli(['import', url, `s${i}`, '--prefix', prefix], JSON.stringify(body));
      expect(imported.status).toBe(0);
    }
    const stats = json(['stats', url, '--prefix', prefix, '--stale-timeout', '3d']).result;
    expect(stats).toMatchObject({ sessions: 30, stale: 10, unreadable: 0 });
    expect(json(['verify', url, '--prefix', prefix]).status).toBe(0);
    const done = json(['prune', url, '--prefix', prefix, '--stale-timeout', '3d', '--yes']);
    expect(done.result).toMatchObject({ expired: 10, removed: 10, failed: [] });
    const exported = cli(['export', url, 's0', '--prefix', prefix]);
    expect(exported.status).toBe(0);
    expect(JSON.parse(exported.stdout).data.createdAt).toBe(now);

    const dir = h.tempDir();
    expect(json(['copy', url, dir, '--prefix', prefix]).result).toMatchObject({ copied: 20 });
    const other = url === cluster.url ? group.url : cluster.url;
    expect(json(['copy', url, other, '--prefix', prefix]).status).toBe(0);
    expect(json(['stats', other, '--prefix', prefix]).result.sessions).toBe(20);
  });
});
