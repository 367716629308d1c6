#!/usr/bin/env node
// @ts-check
'use strict';

// Looks after rammerhead sessions in a directory or in Redis. Every access goes through the
// native core: reads never change anything, deletes re-check each file first, writes are atomic.
// So it is safe to run beside a server using the same directory or Redis.

const fs = require('fs');
const { codedError } = require('../lib/api/errors');
const {
  environmentFlag,
  codecSettings,
  COMPRESSION_VARIABLE,
  KEYS_VARIABLE,
} = require('../lib/stores/options');
const { TLS_INSECURE_VARIABLE } = require('../lib/stores/redis-store');
const { openPlace, expiredOf } = require('./places');

const USAGE = `Usage: rammerhead-sessions <command> WHERE [options]

WHERE is a sessions directory, or a Redis URL holding the sessions of
RammerheadSessionRedisStore: redis://[user:password@]host[:port][/db] for one server,
redis+cluster://[user:password@]host:port[,host:port...] for a Redis Cluster,
redis+sentinel://[user:password@]host:port[,host:port...]/MASTER[/db] for the master a group of
Sentinels names; rediss, rediss+cluster and rediss+sentinel for TLS.

Commands:
  stats WHERE    sessions, total size, age by last use, how many are stale, unreadable ones
  verify WHERE   how sessions are stored, and the unreadable ones (corrupt, or encrypted with
                 a key not given); exit status 1 if there are any
  prune WHERE    delete stale sessions (a dry run unless --yes)
  export WHERE ID      print a session's JSON
  import WHERE ID      read a session's JSON from standard input and store it
  copy FROM TO         copy every session from one place to the other (directory to Redis,
                       Redis to directory, or alike), replacing what TO holds under the same ids;
                       FROM and TO may be the same place, to store every session anew as
                       --write says

Options:
  --prefix P           key prefix of the sessions in Redis (default rammerhead:)
  --tls-ca FILE        PEM certificates that sign a rediss:// server's certificate, in place
                       of the public roots
  --tls-insecure       accept any certificate from a rediss:// server (also when
                       ${TLS_INSECURE_VARIABLE}=1); anyone who can intercept the connection
                       can then read and change the sessions
  --write ENCODING     how import and copy store sessions: plain (rammerhead's own format),
                       zstd, aes-256-gcm or zstd+aes-256-gcm (default: as a store started
                       with the same ${COMPRESSION_VARIABLE} and
                       ${KEYS_VARIABLE} would)
  --stale-timeout D    unused for longer than D is stale (stats default 3d; required by prune)
  --max-to-live D      created longer ago than D is stale (default: no limit)
  --delete-corrupt     prune also deletes unreadable session files
  --yes                prune really deletes
  --json               one JSON object on standard output, for scripts
  -h, --help           this text

Encrypted sessions are read with the keys of ${KEYS_VARIABLE} (base64, separated by commas);
the first one encrypts what is written. Keys are never taken as arguments, which other users
of the machine can see.

Durations: a number of milliseconds, or with a unit: 1500ms, 90s, 30m, 12h, 3d; 'none' or 0
disables a limit.

Exit status: 0 ok, 1 verify found unreadable sessions or some could not be handled,
2 bad arguments, 3 the directory, a file or Redis cannot be read or written.
`;

const UNITS = { ms: 1, s: 1000, m: 60 * 1000, h: 60 * 60 * 1000, d: 24 * 60 * 60 * 1000 };
/** @type {Array<[string, number]>} */
const AGE_BUCKETS = [
  ['under 1 hour', UNITS.h],
  ['under 1 day', UNITS.d],
  ['under 7 days', 7 * UNITS.d],
  ['under 30 days', 30 * UNITS.d],
  ['older', Infinity],
];

class UsageError extends Error {}

function parseDuration(flag, text) {
  if (text === 'none' || text === '0') return null;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text || '');
  if (!match)
    throw new UsageError(`${flag} needs a duration such as 3d, 12h or 90m, got "${text}"`);
  return Number(match[1]) * UNITS[match[2] || 'ms'];
}

function parseArgs(argv) {
  const args = {
    positional: [],
    staleTimeout: undefined,
    maxToLive: null,
    json: false,
    prefix: 'rammerhead:',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') args.help = true;
    else if (arg === '--json') args.json = true;
    else if (arg === '--yes') args.yes = true;
    else if (arg === '--delete-corrupt') args.deleteCorrupt = true;
    else if (arg === '--stale-timeout') args.staleTimeout = parseDuration(arg, argv[++i]);
    else if (arg === '--max-to-live') args.maxToLive = parseDuration(arg, argv[++i]);
    else if (arg === '--prefix') args.prefix = prefixArgument(argv[++i]);
    else if (arg === '--tls-ca') args.tlsCa = certificatesArgument(argv[++i]);
    else if (arg === '--tls-insecure') args.tlsInsecure = true;
    else if (arg === '--write') args.write = argv[++i];
    else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    else args.positional.push(arg);
  }
  try {
    args.tlsInsecure = args.tlsInsecure || environmentFlag(TLS_INSECURE_VARIABLE);
    args.codec = codecArgument(args.write, codecSettings({}));
  } catch (error) {
    throw new UsageError(error.message);
  }
  return args;
}

const ENCODINGS = {
  plain: { compression: 'none', encrypt: false },
  zstd: { compression: 'zstd', encrypt: false },
  'aes-256-gcm': { compression: 'none', encrypt: true },
  'zstd+aes-256-gcm': { compression: 'zstd', encrypt: true },
};

/**
 * How the command writes, from --write and the environment's codec: the keys of the
 * environment read whatever is written.
 */
function codecArgument(write, environment) {
  if (write === undefined) return { ...environment, encrypt: environment.keys.length > 0 };
  if (!Object.hasOwn(ENCODINGS, write)) {
    throw new UsageError(`--write needs one of ${Object.keys(ENCODINGS).join(', ')}`);
  }
  const { compression, encrypt } = ENCODINGS[write];
  if (encrypt && environment.keys.length === 0) {
    throw new UsageError(`--write ${write} needs the keys in ${KEYS_VARIABLE}`);
  }
  return { compression, keys: environment.keys, encrypt };
}

function prefixArgument(text) {
  if (!text) throw new UsageError('--prefix needs a key prefix, such as rammerhead:');
  return text;
}

function certificatesArgument(file) {
  if (!file) throw new UsageError('--tls-ca needs a file of PEM certificates');
  try {
    return fs.readFileSync(file, 'latin1');
  } catch (error) {
    throw new UsageError(`--tls-ca: cannot read ${file} (${error.code})`);
  }
}

function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function stats(place, args) {
  const now = Date.now();
  const staleTimeout = args.staleTimeout === undefined ? 3 * UNITS.d : args.staleTimeout;
  const infos = place.inspect(place.ids());
  const sessions = infos.filter((info) => !info.problem);
  const ages = Object.fromEntries(AGE_BUCKETS.map(([name]) => [name, 0]));
  for (const info of sessions) {
    const age = now - (info.lastUsed ?? info.createdAt ?? now);
    ages[AGE_BUCKETS.find(([, limit]) => age < limit)[0]]++;
  }
  const result = {
    directory: place.name,
    sessions: sessions.length,
    totalBytes: infos.reduce((sum, info) => sum + info.size, 0),
    ageByLastUse: ages,
    stale: expiredOf(sessions, { now, staleTimeout, maxToLive: args.maxToLive }).length,
    staleTimeout,
    maxToLive: args.maxToLive,
    unreadable: infos.length - sessions.length,
    encodings: encodingCounts(sessions),
  };
  const lines = [
    `${result.sessions} sessions, ${formatBytes(result.totalBytes)} in ${place.name}`,
    'last used:',
    ...Object.entries(ages).map(([name, count]) => `  ${name.padEnd(14)} ${count}`),
    `stale (unused for ${describeLimit(staleTimeout)}, older than ${describeLimit(args.maxToLive)}): ${result.stale}`,
    `unreadable ${place.unreadableKind}: ${result.unreadable}`,
    `stored as: ${describeCounts(result.encodings)}`,
  ];
  return { result, lines, status: 0 };
}

/** How many readable sessions are stored in each encoding, in the order of ENCODINGS. */
function encodingCounts(infos) {
  /** @type {Record<string, number>} */
  const counts = {};
  for (const name of Object.keys(ENCODINGS)) {
    const count = infos.filter((info) => info.encoding === name).length;
    if (count) counts[name] = count;
  }
  return counts;
}

function describeCounts(counts) {
  const entries = Object.entries(counts);
  return entries.length ? entries.map(([name, n]) => `${n} ${name}`).join(', ') : 'nothing';
}

function describeLimit(ms) {
  if (!ms) return 'no limit';
  const [unit, size] = Object.entries(UNITS)
    .reverse()
    .find(([, size]) => ms % size === 0) || ['ms', 1];
  return `${ms / size}${unit}`;
}

function verify(place) {
  const infos = place.inspect(place.ids());
  const encodings = encodingCounts(infos.filter((info) => !info.problem));
  const unreadable = infos
    .filter((info) => info.problem)
    .map(({ id, problem, message }) => ({ id, code: problem, message }));
  const undecryptable = unreadable.filter((u) => u.code === 'ERR_SESSION_UNDECRYPTABLE').length;
  const lines = [
    `stored as: ${describeCounts(encodings)}`,
    ...(unreadable.length
      ? [
          `${unreadable.length} unreadable ${place.unreadableKind}` +
            (undecryptable ? ` (${undecryptable} that cannot be decrypted):` : ':'),
          ...unreadable.map((u) => `  ${u.id}: ${u.code} ${u.message}`),
        ]
      : ['every session is readable']),
  ];
  return {
    result: { directory: place.name, encodings, undecryptable, unreadable },
    lines,
    status: unreadable.length ? 1 : 0,
  };
}

function progressBar(done, total) {
  if (!process.stderr.isTTY || total === 0) return;
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stderr.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total}`);
  if (done === total) process.stderr.write('\n');
}

function prune(place, args) {
  if (args.staleTimeout === undefined) throw new UsageError('prune needs --stale-timeout');
  const ids = place.ids();
  const options = {
    now: Date.now(),
    // Object fields take undefined, not null, for "no limit".
    staleTimeout: args.staleTimeout ?? undefined,
    maxToLive: args.maxToLive ?? undefined,
    removeCorrupt: Boolean(args.deleteCorrupt),
    dryRun: !args.yes,
  };
  const { failed, temporariesRemoved, ...total } = place.prune(ids, options, (done) =>
    progressBar(done, ids.length),
  );
  const result = {
    directory: place.name,
    dryRun: options.dryRun,
    ...total,
    temporariesRemoved,
    failed,
  };
  const lines = options.dryRun
    ? [
        `dry run: would delete ${total.expired} stale sessions` +
          (args.deleteCorrupt ? ` and ${total.corrupt} unreadable ${place.unreadableKind}` : '') +
          ` of ${total.scanned}; nothing was deleted (add --yes to delete)`,
      ]
    : [
        `deleted ${total.removed} stale sessions and ${total.removedCorrupt} unreadable ${place.unreadableKind} of ${total.scanned}`,
        `kept ${total.keptBusy} that changed meanwhile; ${failed.length} could not be deleted; ` +
          `removed ${temporariesRemoved} abandoned temporary files`,
        ...failed.map((f) => `  ${f.id}: ${f.code} ${f.message}`),
      ];
  return { result, lines, status: failed.length ? 1 : 0 };
}

function exportSession(place, id) {
  const json = place.read(id);
  return { raw: json, result: JSON.parse(json), status: 0 };
}

function readStdin() {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => (text += chunk));
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

async function importSession(place, id) {
  const json = (await readStdin()).trim();
  await place.prepare();
  place.write(id, json);
  return {
    result: { directory: place.name, imported: id },
    lines: [],
    note: `imported ${id}`,
    status: 0,
  };
}

/**
 * Copies every session of `from` into `to`, each as `to`'s codec writes it (--write), replacing
 * what `to` holds under its id. What cannot be read is listed and left out; nothing is deleted
 * from `from`.
 */
async function copy(from, to) {
  await from.prepare();
  await to.prepare();
  const ids = from.ids();
  const failed = [];
  let copied = 0;
  ids.forEach((id, index) => {
    try {
      to.write(id, from.read(id));
      copied++;
    } catch (error) {
      // Gone since it was listed: expired or deleted by a server meanwhile.
      if (error.code !== 'ENOENT') failed.push({ id, code: error.code, message: error.message });
    }
    if ((index + 1) % 100 === 0 || index + 1 === ids.length) progressBar(index + 1, ids.length);
  });
  const result = { from: from.name, to: to.name, listed: ids.length, copied, failed };
  const lines = [
    `copied ${copied} of ${ids.length} sessions from ${from.name} to ${to.name}`,
    ...(failed.length ? [`${failed.length} could not be copied:`] : []),
    ...failed.map((f) => `  ${f.id}: ${f.code} ${f.message}`),
  ];
  return { result, lines, status: failed.length ? 1 : 0 };
}

/**
 * Node.js turns bytes of an argument that are not UTF-8 into U+FFFD, so two different byte
 * strings would name one session: such an id is refused rather than guessed.
 */
function sessionIdArgument(id) {
  if (id.includes('\uFFFD')) {
    throw codedError(
      'an ID given as an argument cannot contain U+FFFD: it stands for bytes that are not UTF-8',
      'ERR_INVALID_SESSION_ID',
    );
  }
  return id;
}

async function run(args) {
  const [command, where, id] = args.positional;
  const needs = (count, what) => {
    if (args.positional.length !== count) throw new UsageError(`${command} needs ${what}`);
  };
  /** Each command, with how many arguments it takes and what it does with its place. */
  const commands = {
    stats: [2, 'WHERE', (place) => stats(place, args)],
    verify: [2, 'WHERE', verify],
    prune: [2, 'WHERE', (place) => prune(place, args)],
    export: [3, 'WHERE and ID', (place) => exportSession(place, sessionIdArgument(id))],
    import: [3, 'WHERE and ID', (place) => importSession(place, sessionIdArgument(id))],
  };
  if (command === 'copy') {
    needs(3, 'FROM and TO');
    return withPlaces([where, id], args, ([from, to]) => copy(from, to));
  }
  if (!Object.hasOwn(commands, command)) {
    throw new UsageError(command ? `unknown command ${command}` : 'missing command');
  }
  const [count, what, action] = commands[command];
  needs(count, what);
  return withPlaces([where], args, ([place]) => action(place));
}

/** Opens the places, runs `action` on them, and closes them whatever happens. */
async function withPlaces(names, args, action) {
  const places = [];
  try {
    for (const name of names) places.push(openPlace(name, args));
    return await action(places);
  } finally {
    for (const place of places) place.close();
  }
}

function fail(message, status) {
  process.stderr.write(`rammerhead-sessions: ${message}\n`);
  process.exitCode = status;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
    if (args.help) {
      process.stdout.write(USAGE);
      return;
    }
    if (args.tlsInsecure) {
      process.stderr.write(
        'rammerhead-sessions: TLS certificate checks are off: whoever can intercept the connection to Redis can read and change the sessions\n',
      );
    }
    const outcome = await run(args);
    if (args.json) process.stdout.write(`${JSON.stringify(outcome.result)}\n`);
    else if (outcome.raw !== undefined) process.stdout.write(`${outcome.raw}\n`);
    else if (outcome.lines.length) process.stdout.write(`${outcome.lines.join('\n')}\n`);
    if (outcome.note) process.stderr.write(`${outcome.note}\n`);
    process.exitCode = outcome.status;
  } catch (error) {
    if (error instanceof UsageError) {
      fail(`${error.message}\n\n${USAGE}`, 2);
    } else if (error.code === 'ERR_INVALID_SESSION_ID') {
      fail(error.message, 2);
    } else if (error.code) {
      fail(`${error.message} (${error.code})`, 3);
    } else {
      throw error;
    }
  }
}

main();
