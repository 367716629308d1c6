#!/usr/bin/env node
'use strict';

// Looks after a rammerhead sessions directory. Every file access goes through the native core:
// reads never change anything, deletes re-check each file first, writes are atomic. So it is safe
// to run beside a server using the same directory.

const native = require('../index.js');

const USAGE = `Usage: rammerhead-sessions <command> DIR [options]

Commands:
  stats DIR    sessions, total size, age by last use, how many are stale, unreadable files
  verify DIR   list unreadable files; exit status 1 if there are any
  prune DIR    delete stale sessions (a dry run unless --yes)
  export DIR ID        print a session's JSON
  import DIR ID        read a session's JSON from standard input and store it

Options:
  --stale-timeout D    unused for longer than D is stale (stats default 3d; required by prune)
  --max-to-live D      created longer ago than D is stale (default: no limit)
  --delete-corrupt     prune also deletes unreadable session files
  --yes                prune really deletes
  --json               one JSON object on standard output, for scripts
  -h, --help           this text

Durations: a number of milliseconds, or with a unit: 1500ms, 90s, 30m, 12h, 3d; 'none' or 0
disables a limit.

Exit status: 0 ok, 1 verify found unreadable files or some files could not be handled,
2 bad arguments, 3 the directory or a file cannot be read or written.
`;

const BATCH = 500;
const UNITS = { ms: 1, s: 1000, m: 60 * 1000, h: 60 * 60 * 1000, d: 24 * 60 * 60 * 1000 };
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
  const args = { positional: [], staleTimeout: undefined, maxToLive: null, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') args.help = true;
    else if (arg === '--json') args.json = true;
    else if (arg === '--yes') args.yes = true;
    else if (arg === '--delete-corrupt') args.deleteCorrupt = true;
    else if (arg === '--stale-timeout') args.staleTimeout = parseDuration(arg, argv[++i]);
    else if (arg === '--max-to-live') args.maxToLive = parseDuration(arg, argv[++i]);
    else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    else args.positional.push(arg);
  }
  return args;
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

/** How many of the inspected files are stale, by the core's expiry rule. */
function countStale(infos, now, staleTimeout, maxToLive) {
  const time = (at) => (typeof at === 'number' ? at : NaN);
  const createdAt = Float64Array.from(infos, (info) => time(info.createdAt));
  const lastUsed = Float64Array.from(infos, (info) => time(info.lastUsed));
  return native.expiredIndices(createdAt, lastUsed, now, staleTimeout, maxToLive).length;
}

/** Inspects every session file, a batch at a time. */
function inspectAll(dir) {
  const ids = native.listSessionFiles(dir);
  const infos = [];
  for (let i = 0; i < ids.length; i += BATCH) {
    infos.push(...native.inspectSessionFiles(dir, ids.slice(i, i + BATCH)));
  }
  return infos;
}

function stats(dir, args) {
  const now = Date.now();
  const staleTimeout = args.staleTimeout === undefined ? 3 * UNITS.d : args.staleTimeout;
  const infos = inspectAll(dir);
  const sessions = infos.filter((info) => !info.problem);
  const ages = Object.fromEntries(AGE_BUCKETS.map(([name]) => [name, 0]));
  for (const info of sessions) {
    const age = now - (info.lastUsed ?? info.createdAt ?? now);
    ages[AGE_BUCKETS.find(([, limit]) => age < limit)[0]]++;
  }
  const result = {
    directory: dir,
    sessions: sessions.length,
    totalBytes: infos.reduce((sum, info) => sum + info.size, 0),
    ageByLastUse: ages,
    stale: countStale(sessions, now, staleTimeout, args.maxToLive),
    staleTimeout,
    maxToLive: args.maxToLive,
    unreadable: infos.length - sessions.length,
  };
  const lines = [
    `${result.sessions} sessions, ${formatBytes(result.totalBytes)} in ${dir}`,
    'last used:',
    ...Object.entries(ages).map(([name, count]) => `  ${name.padEnd(14)} ${count}`),
    `stale (unused for ${describeLimit(staleTimeout)}, older than ${describeLimit(args.maxToLive)}): ${result.stale}`,
    `unreadable files: ${result.unreadable}`,
  ];
  return { result, lines, status: 0 };
}

function describeLimit(ms) {
  if (!ms) return 'no limit';
  const [unit, size] = Object.entries(UNITS)
    .reverse()
    .find(([, size]) => ms % size === 0) || ['ms', 1];
  return `${ms / size}${unit}`;
}

function verify(dir) {
  const unreadable = inspectAll(dir)
    .filter((info) => info.problem)
    .map(({ id, problem, message }) => ({ id, code: problem, message }));
  const lines = unreadable.length
    ? [
        `${unreadable.length} unreadable files:`,
        ...unreadable.map((u) => `  ${u.id}: ${u.code} ${u.message}`),
      ]
    : ['every session file is readable'];
  return { result: { directory: dir, unreadable }, lines, status: unreadable.length ? 1 : 0 };
}

function progressBar(done, total) {
  if (!process.stderr.isTTY || total === 0) return;
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stderr.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total}`);
  if (done === total) process.stderr.write('\n');
}

function prune(dir, args) {
  if (args.staleTimeout === undefined) throw new UsageError('prune needs --stale-timeout');
  const ids = native.listSessionFiles(dir);
  const options = {
    now: Date.now(),
    // Object fields take undefined, not null, for "no limit".
    staleTimeout: args.staleTimeout ?? undefined,
    maxToLive: args.maxToLive ?? undefined,
    removeCorrupt: Boolean(args.deleteCorrupt),
    dryRun: !args.yes,
  };
  const total = { scanned: 0, expired: 0, removed: 0, keptBusy: 0, corrupt: 0, removedCorrupt: 0 };
  const failed = [];
  for (let i = 0; i < ids.length; i += BATCH) {
    const summary = native.pruneSessionFiles(dir, ids.slice(i, i + BATCH), options);
    for (const key of ['scanned', 'expired', 'removed', 'keptBusy', 'removedCorrupt']) {
      total[key] += summary[key];
    }
    total.corrupt += summary.corrupt.length;
    failed.push(...summary.failed);
    progressBar(Math.min(i + BATCH, ids.length), ids.length);
  }
  const temporariesRemoved = options.dryRun ? 0 : native.removeAbandonedTemporaries(dir);
  const result = { directory: dir, dryRun: options.dryRun, ...total, temporariesRemoved, failed };
  const lines = options.dryRun
    ? [
        `dry run: would delete ${total.expired} stale sessions` +
          (args.deleteCorrupt ? ` and ${total.corrupt} unreadable files` : '') +
          ` of ${total.scanned}; nothing was deleted (add --yes to delete)`,
      ]
    : [
        `deleted ${total.removed} stale sessions and ${total.removedCorrupt} unreadable files of ${total.scanned}`,
        `kept ${total.keptBusy} that changed meanwhile; ${failed.length} could not be deleted; ` +
          `removed ${temporariesRemoved} abandoned temporary files`,
        ...failed.map((f) => `  ${f.id}: ${f.code} ${f.message}`),
      ];
  return { result, lines, status: failed.length ? 1 : 0 };
}

function exportSession(dir, id) {
  const json = native.exportSessionFile(dir, id);
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

async function importSession(dir, id) {
  const json = (await readStdin()).trim();
  native.importSessionFile(dir, id, json);
  return { result: { directory: dir, imported: id }, lines: [], note: `imported ${id}`, status: 0 };
}

/**
 * Node.js turns bytes of an argument that are not UTF-8 into U+FFFD, so two different byte
 * strings would name one session: such an id is refused rather than guessed.
 */
function sessionIdArgument(id) {
  if (id.includes('\uFFFD')) {
    const error = new Error(
      'an ID given as an argument cannot contain U+FFFD: it stands for bytes that are not UTF-8',
    );
    error.code = 'ERR_INVALID_SESSION_ID';
    throw error;
  }
  return id;
}

async function run(args) {
  const [command, dir, id] = args.positional;
  const needs = (count) => {
    if (args.positional.length !== count) {
      const what = count === 3 ? 'DIR and ID' : 'DIR';
      throw new UsageError(`${command} needs ${what}`);
    }
  };
  switch (command) {
    case 'stats':
      needs(2);
      return stats(dir, args);
    case 'verify':
      needs(2);
      return verify(dir);
    case 'prune':
      needs(2);
      return prune(dir, args);
    case 'export':
      needs(3);
      return exportSession(dir, sessionIdArgument(id));
    case 'import':
      needs(3);
      return importSession(dir, sessionIdArgument(id));
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'missing command');
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
