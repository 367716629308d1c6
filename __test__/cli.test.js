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

describe('rammerhead-sessions with compressed and encrypted sessions', () => {
  const crypto = require('crypto');
  const HammerheadSession = require('../demo/hammerhead-session');
  const KEY = crypto.randomBytes(32).toString('base64');
  const OTHER_KEY = crypto.randomBytes(32).toString('base64');
  const SECRET = 'secret-cookie-value-91c2';
  const withKeys = { RAMMERHEAD_SESSION_KEYS: KEY };
  let redis;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis.close());

  function cliWith(env, args) {
    const run = spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  }
  const jsonWith = (env, args) => {
    const run = cliWith(env, [...args, '--json']);
    return { ...run, result: JSON.parse(run.stdout) };
  };

  /** One session in each encoding, and one encrypted with a key the command is not given. */
  async function mixedDirectory() {
    const dir = h.tempDir();
    const write = async (id, options) => {
      const store = h.openFileCache(dir, options);
      const session = new HammerheadSession({ id });
      session.cookies.setByServer('https://mail.example.com/', [`sid=${SECRET}; Path=/`]);
      store.addSerializedSession(id, session.serializeSession());
      await store.close();
    };
    await write('plain', {});
    await write('zstd', { compression: 'zstd' });
    await write('aes', { encryptionKeys: [KEY] });
    await write('both', { compression: 'zstd', encryptionKeys: [KEY] });
    await write('other', { encryptionKeys: [OTHER_KEY] });
    return dir;
  }
  const contents = (dir, id) => fs.readFileSync(path.join(dir, `${id}.rhfsession`));

  test('verify reports each encoding and the sessions no key given decrypts', async () => {
    const dir = await mixedDirectory();
    const { status, result, stdout } = jsonWith(withKeys, ['verify', dir]);
    expect(status).toBe(1);
    expect(result.encodings).toEqual({
      plain: 1,
      zstd: 1,
      'aes-256-gcm': 1,
      'zstd+aes-256-gcm': 1,
    });
    expect(result.undecryptable).toBe(1);
    expect(result.unreadable).toEqual([
      expect.objectContaining({ id: 'other', code: 'ERR_SESSION_UNDECRYPTABLE' }),
    ]);
    expect(stdout).not.toContain(KEY);
    // Without keys, the encrypted ones are the unreadable ones.
    expect(jsonWith({}, ['verify', dir]).result.undecryptable).toBe(3);
    const human = cliWith(withKeys, ['verify', dir]).stdout;
    expect(human).toContain('stored as: 1 plain, 1 zstd, 1 aes-256-gcm, 1 zstd+aes-256-gcm');
    expect(human).toContain('1 unreadable files (1 that cannot be decrypted)');
  });

  test('export decodes, and copy converts to plain files the original store reads', async () => {
    const dir = await mixedDirectory();
    const exported = cliWith(withKeys, ['export', dir, 'both']);
    expect(exported.status).toBe(0);
    expect(JSON.parse(exported.stdout).serializedCookieJar).toContain(SECRET);
    const plain = h.tempDir();
    const copied = jsonWith(withKeys, ['copy', dir, plain, '--write', 'plain']);
    expect(copied.status).toBe(1);
    expect(copied.result).toMatchObject({ listed: 5, copied: 4 });
    expect(copied.result.failed.map((f) => [f.id, f.code])).toEqual([
      ['other', 'ERR_SESSION_UNDECRYPTABLE'],
    ]);
    for (const id of ['plain', 'zstd', 'aes', 'both']) {
      const json = JSON.parse(contents(plain, id).toString('utf8'));
      expect(json.serializedCookieJar).toContain(SECRET);
    }
  });

  test('copy onto the same place stores every readable session anew, and to Redis', async () => {
    const dir = await mixedDirectory();
    const other = contents(dir, 'other');
    const run = jsonWith(withKeys, ['copy', dir, dir, '--write', 'zstd+aes-256-gcm']);
    expect(run.result.copied).toBe(4);
    expect(jsonWith(withKeys, ['verify', dir]).result.encodings).toEqual({
      'zstd+aes-256-gcm': 4,
    });
    expect(contents(dir, 'other')).toEqual(other);

    const there = jsonWith(withKeys, ['copy', dir, redis.url, '--prefix', 'enc:']);
    expect(there.result.copied).toBe(4);
    const value = redis.cli('GET', sessionKey('enc:', 'plain'));
    expect(value.startsWith('RHS')).toBe(true);
    expect(value).not.toContain(SECRET);
    // Without --write, as a store with the same environment writes: encrypted, not compressed.
    const verified = jsonWith(withKeys, ['verify', redis.url, '--prefix', 'enc:']);
    expect(verified.result.encodings).toEqual({ 'aes-256-gcm': 4 });
    const exported = cliWith(withKeys, ['export', redis.url, 'aes', '--prefix', 'enc:']);
    expect(JSON.parse(exported.stdout).serializedCookieJar).toContain(SECRET);
    expect(jsonWith({}, ['verify', redis.url, '--prefix', 'enc:']).result.undecryptable).toBe(4);
  });

  test('--write says what it needs; keys come only from the environment', async () => {
    const dir = await mixedDirectory();
    const noKeys = cliWith({}, ['copy', dir, h.tempDir(), '--write', 'aes-256-gcm']);
    expect(noKeys.status).toBe(2);
    expect(noKeys.stderr).toContain(
      '--write aes-256-gcm needs the keys in RAMMERHEAD_SESSION_KEYS',
    );
    const unknown = cliWith(withKeys, ['copy', dir, h.tempDir(), '--write', 'gzip']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('--write needs one of plain, zstd');
    const badKey = cliWith({ RAMMERHEAD_SESSION_KEYS: 'abc' }, ['verify', dir]);
    expect(badKey.status).toBe(2);
    expect(badKey.stderr).toContain('RAMMERHEAD_SESSION_KEYS: key 1 must be 32 bytes');
  });
});
