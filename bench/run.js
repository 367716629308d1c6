#!/usr/bin/env node
'use strict';

// Measures both stores side by side with their baselines in one run and prints a table and a
// JSON line. Usage: npm run bench [-- N]   (N defaults to 20000; BENCH_N works too)
// Each figure is measured in a process of its own (figures.js, hot-path.js, redis-process.js),
// which npm run bench starts with --expose-gc so garbage is collected between phases.
// With RAMMERHEAD_DIR pointing to a rammerhead checkout (dependencies installed), rammerhead's
// own stores are measured too, all stores then using rammerhead's RammerheadSession.

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { endToEnd, sessionFiles } = require('./end-to-end');
const redisBench = require('./redis');
const { topologyFigures } = require('./topology');
const { propagationFigures } = require('./propagation');
const {
  RAMMERHEAD_DIR,
  sessionClassPath,
  original,
  sessionIds,
  sessionDir,
  template,
  tempDir,
  removeDir,
} = require('./stores');

const N = Number(process.argv[2] || process.env.BENCH_N || 20000);
/** Processes per store for the hot-path figures, the best of them kept. */
const HOT_ROUNDS = 3;
/** Seconds of traffic in the end-to-end figure; 0 leaves it out. */
const E2E_SECONDS = Number(process.env.BENCH_E2E_SECONDS || 10);
const ids = sessionIds(N);

// ---------------------------------------------------------------------------------------------
// Benchmarks

/**
 * The hot path of each store kind: `get` and `has`, each measured alone in HOT_ROUNDS processes
 * of its own (see hot-path.js), the kinds taking turns; the best figure of each is kept.
 */
function hotPathFigures(kinds, redisUrl) {
  const dir = sessionDir(ids, 0);
  const best = {};
  const measured = (kind, op) =>
    Number(
      execFileSync(
        process.execPath,
        [
          '--expose-gc',
          path.join(__dirname, 'hot-path.js'),
          kind,
          String(N),
          kind === 'redis' ? redisUrl : dir,
          op,
        ],
        { encoding: 'utf8' },
      ),
    );
  try {
    for (let round = 0; round < HOT_ROUNDS; round++) {
      for (const kind of kinds) {
        best[kind] = best[kind] || { hotGet: Infinity, hotHas: Infinity };
        best[kind].hotGet = Math.min(best[kind].hotGet, measured(kind, 'get'));
        best[kind].hotHas = Math.min(best[kind].hotHas, measured(kind, 'has'));
      }
    }
  } finally {
    removeDir(dir);
  }
  return best;
}

/** What each codec stores and costs (see codecs.js), in a process of its own. */
function codecFigures() {
  return JSON.parse(
    execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'codecs.js')], {
      encoding: 'utf8',
    }),
  );
}

/** The codecs' table: per session and codec, bytes stored and the time added to plain JSON's. */
function printCodecTable(codecs) {
  const names = {
    bench10k: "the bench's 10 KB session",
    cookies10k: '10 KB, 32 cookies',
    localStorage100k: '100 KB, synced localStorage',
  };
  const header = ['session', 'codec', 'bytes stored', 'vs plain', 'write: added', 'load: added'];
  const table = [];
  for (const [session, byCodec] of Object.entries(codecs)) {
    const plain = byCodec.plain;
    for (const [codec, measured] of Object.entries(byCodec)) {
      table.push([
        names[session] || session,
        codec,
        `${measured.bytes} B`,
        ratio(measured.bytes, plain.bytes),
        codec === 'plain' ? fmt(plain.write, 'µs') : fmt(measured.write - plain.write, 'µs'),
        codec === 'plain' ? fmt(plain.load, 'µs') : fmt(measured.load - plain.load, 'µs'),
      ]);
    }
  }
  console.log(
    '\nStored values by codec (compressed ≤ 0.33× plain; at 10 KB, ≤ 20 µs added to a write and a load;',
  );
  console.log("plain's own row gives its times: a write of a new file and a load, on /dev/shm)");
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
}

/** One figure of figures.js for `kind` (ours or original), in a process of its own. */
function figure(name, kind) {
  return JSON.parse(
    execFileSync(
      process.execPath,
      [
        '--expose-gc',
        '--max-old-space-size=8192',
        path.join(__dirname, 'figures.js'),
        name,
        kind,
        String(N),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
}

/** The figures of figures.js for `kind`, each in a process of its own. */
function storeFigures(kind) {
  // The original's keys() is quadratic in the sessions it holds: hours at N = 100,000.
  const keys = kind === 'original' && N > 20000 ? {} : figure('fileKeys', kind);
  return {
    memory: { ...figure('memoryCleanupNone', kind), ...figure('memoryCleanupAll', kind) },
    file: { ...figure('fileOps', kind), ...keys, ...figure('fileFlush', kind) },
    ...figure('startup', kind),
    ...figure('heldExpiry', kind),
  };
}

/**
 * The end-to-end figure for one store: "file" (ours), "redis" (ours, on `redis`), or the path
 * of rammerhead's FileCache; the site sets a cookie on one page in `cookieEvery`.
 */
async function endToEndFigures(store, redis, cookieEvery = 1) {
  if (E2E_SECONDS === 0) return null;
  // The proxy runs in a process of its own, on the real clock: its files are dated by it.
  const dir = tempDir();
  const fresh = sessionFiles(dir, ids, template);
  if (redis) redisBench.fill(redis, 'e2e:', fresh, template);
  try {
    return await endToEnd({
      store,
      dir,
      fresh,
      sessionClass: sessionClassPath,
      seconds: E2E_SECONDS,
      random: Math.random,
      redisUrl: redis ? redis.url : '',
      cookieEvery,
    });
  } finally {
    removeDir(dir);
  }
}

/** One figure of request-process.js, in a process of its own. */
function requestFigure(name, kind, redisUrl) {
  const script = path.join(__dirname, 'request-process.js');
  return JSON.parse(
    execFileSync(process.execPath, ['--expose-gc', script, name, kind, redisUrl, String(N)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
}

/** The request step's figures (see request-process.js). */
function requestStepFigures(redisUrl) {
  return {
    file: requestFigure('stepLoad', 'file', redisUrl),
    redis: {
      ...requestFigure('stepLoad', 'redis', redisUrl),
      ...requestFigure('versionCheck', 'redis', redisUrl),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Report

function fmt(value, unit) {
  if (value === null || value === undefined) return '–';
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

function ratio(a, b) {
  return a === undefined || b === undefined || a === null || b === null
    ? '–'
    : `${(a / b).toFixed(2)}×`;
}

async function main() {
  const machine = `${os.cpus().length} × ${os.cpus()[0].model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  console.log(
    `N = ${N}; ${machine}; session class: ${RAMMERHEAD_DIR ? 'rammerhead' : 'demo (testcafe-hammerhead)'}`,
  );

  const redis = await redisBench.RedisServer.start();
  redisBench.fill(redis, 'hot:', ids, template);
  const hot = hotPathFigures(
    original
      ? [
          'map',
          'file',
          'memory',
          'redis',
          'original-file',
          'original-file-quiet',
          'original-memory',
        ]
      : ['map', 'file', 'memory', 'redis'],
    redis.url,
  );
  const map = hot.map;
  const ours = storeFigures('ours');
  ours.memory = { ...hot.memory, ...ours.memory };
  ours.file = { ...hot.file, ...ours.file };
  ours.e2e = await endToEndFigures('file');
  try {
    ours.redis = {
      ...hot.redis,
      ...(await redisBench.redisFigures(redis, { ids })),
      ...(await propagationFigures(redis, template)),
    };
    ours.step = requestStepFigures(redis.url);
    ours.redis.e2e = await endToEndFigures('redis', redis);
    // Sites set cookies on some pages, not all: a write per response is the Redis store's
    // worst case, and the FileCache writes none.
    ours.redis.e2eFewCookies = await endToEndFigures('redis', redis, 10);
    ours.e2eFewCookies = await endToEndFigures('file', null, 10);
  } finally {
    await redis.close();
  }
  ours.topology = await topologyFigures(N);
  ours.codecs = codecFigures();
  let theirs;
  if (original) {
    theirs = storeFigures('original');
    theirs.memory = { ...hot['original-memory'], ...theirs.memory };
    theirs.file = { ...hot['original-file'], ...theirs.file };
    theirs.hotGetNoOpLogger = hot['original-file-quiet'].hotGet;
    theirs.e2e = await endToEndFigures(
      path.join(RAMMERHEAD_DIR, 'src', 'classes', 'RammerheadSessionFileCache'),
    );
  }

  const rows = [
    [
      'FileCache hot get (cached)',
      ours.file.hotGet,
      'ns',
      map.hotGet,
      theirs && theirs.file.hotGet,
      '≤ 0.8× original',
    ],
    [
      'FileCache hot get, original with a no-op logger',
      ours.file.hotGet,
      'ns',
      map.hotGet,
      theirs && theirs.hotGetNoOpLogger,
      '',
    ],
    [
      'FileCache hot has (cached)',
      ours.file.hotHas,
      'ns',
      map.hotHas,
      theirs && theirs.file.hotHas,
      '≤ 1.0× original',
    ],
    [
      'MemoryStore hot get',
      ours.memory.hotGet,
      'ns',
      map.hotGet,
      theirs && theirs.memory.hotGet,
      '≤ 0.3× original',
    ],
    [
      'MemoryStore hot has',
      ours.memory.hotHas,
      'ns',
      map.hotHas,
      theirs && theirs.memory.hotHas,
      '',
    ],
    ['cold get (read + revive)', ours.file.coldGet, 'µs', null, theirs && theirs.file.coldGet, ''],
    ['add', ours.file.add, 'µs', null, theirs && theirs.file.add, '≤ ½ original'],
    [
      'add, until its file is written (wall)',
      ours.file.addWritten,
      'µs',
      null,
      theirs && theirs.file.addWritten,
      '',
    ],
    [
      'addSerializedSession',
      ours.file.addSerialized,
      'µs',
      null,
      theirs && theirs.file.addSerialized,
      '',
    ],
    ['delete', ours.file.delete, 'µs', null, theirs && theirs.file.delete, ''],
    [
      'keys() with N cached + N files',
      ours.file.keys,
      'ms',
      null,
      theirs && theirs.file.keys,
      '≤ 100 ms',
    ],
    [
      'flush, per session (wall)',
      ours.file.flush,
      'µs',
      null,
      theirs && theirs.file.flush,
      '≤ ½ original',
    ],
    [
      'flush, per session (JS thread)',
      ours.file.flushBusy,
      'µs',
      null,
      theirs && theirs.file.flushBusy,
      '',
    ],
    [
      'worst stall during flush',
      ours.file.flushStall,
      'ms',
      null,
      theirs && theirs.file.flushStall,
      '≤ 10 ms',
    ],
    [
      'constructor over N files',
      ours.constructor,
      'ms',
      null,
      theirs && theirs.constructor,
      '≤ 5 ms',
    ],
    [
      'cleanup of N stale files, per session',
      ours.cleanup,
      'µs',
      null,
      theirs && theirs.cleanup,
      '≤ ½ original',
    ],
    [
      'worst stall during cleanup',
      ours.cleanupStall,
      'ms',
      null,
      theirs && theirs.cleanupStall,
      '≤ 10 ms',
    ],
    [
      'cleanup of N expired held sessions, per session',
      ours.heldExpiry,
      'µs',
      null,
      theirs && theirs.heldExpiry,
      '',
    ],
    [
      'worst stall during that cleanup',
      ours.heldExpiryStall,
      'ms',
      null,
      theirs && theirs.heldExpiryStall,
      '≤ 10 ms',
    ],
    [
      'MemoryStore cleanup, none expired: worst stall',
      ours.memory.cleanupNoneStall,
      'ms',
      null,
      theirs && theirs.memory.cleanupNoneStall,
      '≤ 10 ms',
    ],
    [
      'MemoryStore cleanup, all expired: worst stall',
      ours.memory.cleanupAllStall,
      'ms',
      null,
      theirs && theirs.memory.cleanupAllStall,
      '≤ 10 ms',
    ],
  ];
  const fileOf = (key) => theirs && theirs.file[key];
  rows.push(
    [
      'RedisStore hot get (cached)',
      ours.redis.hotGet,
      'ns',
      map.hotGet,
      theirs && theirs.file.hotGet,
      '≤ 0.8× original',
    ],
    [
      'RedisStore hot has (cached)',
      ours.redis.hotHas,
      'ns',
      map.hotHas,
      theirs && theirs.file.hotHas,
      '≤ 1.0× original',
    ],
    [
      'Redis round trip from Node (PING on a socket): the floor',
      ours.redis.roundTrip,
      'µs',
      null,
      null,
      '',
    ],
    [
      `RedisStore get, not in memory (${(ours.redis.bigBytes / 1024).toFixed(0)} KB session)`,
      ours.redis.coldGet,
      'µs',
      null,
      fileOf('coldGet'),
      '≤ 150 µs',
    ],
    [
      'RedisStore addSerializedSession (vs this FileCache, in one process)',
      ours.redis.addSerialized,
      'µs',
      null,
      ours.redis.fileAddSerialized,
      '≤ ½ FileCache',
    ],
    ['RedisStore delete', ours.redis.delete, 'µs', null, fileOf('delete'), '≤ 150 µs'],
    ['RedisStore keys() with N stored + N held', ours.redis.keys, 'ms', null, null, '≤ 100 ms'],
    [
      'RedisStore round storing N changed sessions, per session (wall)',
      ours.redis.writeChanged,
      'µs',
      null,
      null,
      '',
    ],
    [
      'RedisStore worst stall during that round',
      ours.redis.writeStall,
      'ms',
      null,
      null,
      '≤ 10 ms',
    ],
    [
      'RedisStore get while Redis hangs: first call',
      ours.redis.downFirstGet,
      'ms',
      null,
      null,
      '≤ commandTimeout (500 ms)',
    ],
    [
      'RedisStore get while Redis hangs: later calls',
      ours.redis.downLaterGet,
      'µs',
      null,
      null,
      '',
    ],
    [
      'RedisStore change seen by another host holding it: p50',
      ours.redis.propagationP50,
      'ms',
      null,
      null,
      `from the change (a Set-Cookie); ${ours.redis.changes} changes`,
    ],
    [
      'RedisStore change seen by another host holding it: p99',
      ours.redis.propagationP99,
      'ms',
      null,
      null,
      '≤ 50 ms',
    ],
    [
      'request step: event-loop time of a FileCache load (vs a get that loads)',
      ours.step.file.stepLoop,
      'µs',
      null,
      ours.step.file.getLoop,
      'the read off the thread',
    ],
    [
      'request step: event-loop time of a RedisStore load (vs a get that loads)',
      ours.step.redis.stepLoop,
      'µs',
      null,
      ours.step.redis.getLoop,
      'the round trip off the thread',
    ],
    [
      'RedisStore version check before a request: p50',
      ours.step.redis.checkP50,
      'ms',
      null,
      null,
      `8 at once: ${fmt(ours.step.redis.checkP50Concurrent, 'ms')}`,
    ],
    [
      'RedisStore version check before a request: p99',
      ours.step.redis.checkP99,
      'ms',
      null,
      null,
      `8 at once: ${fmt(ours.step.redis.checkP99Concurrent, 'ms')}`,
    ],
    [
      `RedisStore conflicts merged, 2 hosts writing at once ${ours.redis.contended} times`,
      ours.redis.merged,
      'merges',
      null,
      null,
      `every cookie kept: ${ours.redis.allCookiesKept ? 'yes' : 'NO'}; last writer won ${ours.redis.lastWriterWins} times`,
    ],
  );
  const { cluster, sentinel } = ours.topology;
  rows.push(
    [
      'RedisStore on a cluster of 3 masters: largest share of N sessions on one master',
      cluster.largestShare,
      '%',
      null,
      null,
      `≤ 45%; per master: ${cluster.perMaster.join(', ')}`,
    ],
    [
      'RedisStore get, not in memory, on a cluster (vs one server)',
      cluster.coldGet,
      'µs',
      null,
      ours.redis.coldGet,
      '',
    ],
    [
      'RedisStore addSerializedSession on a cluster (vs one server)',
      cluster.addSerialized,
      'µs',
      null,
      ours.redis.addSerialized,
      '',
    ],
    [
      'RedisStore delete on a cluster (vs one server)',
      cluster.delete,
      'µs',
      null,
      ours.redis.delete,
      '',
    ],
    ...[
      ['cluster', cluster.failover, 'cluster-node-timeout 1 s'],
      ['Sentinel', sentinel.failover, 'down-after-milliseconds 1 s'],
    ].flatMap(([name, figures, setting]) => [
      [
        `RedisStore ${name}: a master killed, until ${figures.held} changed sessions all store again`,
        figures.pause,
        'ms',
        null,
        null,
        `${setting}; held gets unanswered: ${figures.missed}`,
      ],
      [
        `RedisStore ${name}: worst event-loop stall during that failover`,
        figures.stall,
        'ms',
        null,
        null,
        '≤ 10 ms',
      ],
    ]),
  );
  const e2e = (figures, key) => figures && figures.e2e && figures.e2e[key];
  if (ours.e2e) {
    rows.push(
      ['end to end: requests per second', e2e(ours, 'rps'), '/s', null, e2e(theirs, 'rps'), ''],
      ['end to end: p50 latency', e2e(ours, 'p50'), 'ms', null, e2e(theirs, 'p50'), ''],
      [
        'end to end: p99 latency',
        e2e(ours, 'p99'),
        'ms',
        null,
        e2e(theirs, 'p99'),
        '≤ 1.0× original',
      ],
      ['end to end: worst request', e2e(ours, 'max'), 'ms', null, e2e(theirs, 'max'), ''],
      [
        'end to end: RedisStore requests per second (vs this FileCache)',
        e2e(ours.redis, 'rps'),
        '/s',
        null,
        e2e(ours, 'rps'),
        '≥ 0.9× FileCache',
      ],
      [
        'end to end: RedisStore p99 latency (vs this FileCache)',
        e2e(ours.redis, 'p99'),
        'ms',
        null,
        e2e(ours, 'p99'),
        '',
      ],
      [
        'end to end, a cookie on 1 page in 10: RedisStore requests per second (vs this FileCache)',
        ours.redis.e2eFewCookies && ours.redis.e2eFewCookies.rps,
        '/s',
        null,
        ours.e2eFewCookies && ours.e2eFewCookies.rps,
        '≥ 0.9× FileCache',
      ],
      [
        'end to end: start to first answer',
        e2e(ours, 'firstAnswer'),
        'ms',
        null,
        e2e(theirs, 'firstAnswer'),
        '',
      ],
    );
  }
  const header = [
    'operation',
    'this package',
    'JS Map',
    'vs Map',
    'rammerhead',
    'vs rammerhead',
    'target',
  ];
  const table = rows.map(([name, value, unit, base, orig, target]) => [
    name,
    fmt(value, unit),
    fmt(base, unit),
    ratio(value, base),
    fmt(orig, unit),
    ratio(value, orig),
    target,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
  printCodecTable(ours.codecs);
  console.log(JSON.stringify({ n: N, machine, map, ours, rammerhead: theirs || null }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
