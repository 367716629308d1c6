// What each codec of the stored values (compression, encryption) stores and costs, in a process
// of its own, for three sessions: the bench's 10 KB session (localStorage of one repeated
// letter), a 10 KB one of 32 cookies with random values, and a 100 KB one of synced
// localStorage. Bytes are those of one session file. Times are per session, of the core's own
// file calls, without the revive a store adds: `import` (check, encode, write a new file, rename
// it into place) and `load` (read, decode, check), each codec taking its turn session by session
// so that the machine's drift reaches all alike. A file write's time varies by hundreds of
// microseconds, more than any codec costs: files go to /dev/shm where there is one, and each
// figure is the median of every call of ROUNDS rounds; what a codec adds is its median less
// plain JSON's.
// node --expose-gc codecs.js prints one JSON line.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { FileSessions } = require('../index.js');
const { now, percentile, settle, printFigure } = require('./measure');
const stores = require('./stores');

const ROUNDS = 5;
const KEY = crypto.randomBytes(32);
const CODECS = {
  plain: { compression: 'none', keys: [] },
  zstd: { compression: 'zstd', keys: [] },
  'aes-256-gcm': { compression: 'none', keys: [KEY] },
  'zstd+aes-256-gcm': { compression: 'zstd', keys: [KEY] },
};
const SESSIONS = {
  bench10k: { json: stores.sessionOfSize(10 * 1024), count: 1000 },
  cookies10k: { json: stores.realisticSession({ cookies: 32, items: 8 }), count: 1000 },
  localStorage100k: { json: stores.realisticSession({ cookies: 10, items: 600 }), count: 200 },
};
const MAX_SESSION_BYTES = 64 * 1024 * 1024;
/** Memory-backed where the system has it: a disk's write times would hide what a codec costs. */
const SCRATCH = fs.existsSync('/dev/shm') ? '/dev/shm' : require('os').tmpdir();

/** One round on one session: per codec, the stored size and the µs of each import and load. */
function round({ json, count }, times) {
  const ids = stores.sessionIds(count);
  const places = Object.entries(CODECS).map(([name, codec]) => {
    const dir = fs.mkdtempSync(path.join(SCRATCH, 'rh-codec-'));
    times[name] = times[name] || { write: [], load: [] };
    return { name, dir, files: new FileSessions(dir, false, MAX_SESSION_BYTES, codec) };
  });
  const timed = (list, fn) => {
    const start = now();
    fn();
    list.push((now() - start) * 1000);
  };
  try {
    settle();
    for (const id of ids) {
      for (const { name, files } of places) timed(times[name].write, () => files.import(id, json));
    }
    settle();
    for (const id of ids) {
      for (const { name, files } of places) timed(times[name].load, () => files.load(id));
    }
    return Object.fromEntries(
      places.map(({ name, dir }) => [
        name,
        fs.statSync(path.join(dir, `${ids[0]}.rhfsession`)).size,
      ]),
    );
  } finally {
    for (const place of places) stores.removeDir(place.dir);
  }
}

const median = (list) =>
  percentile(
    list.sort((a, b) => a - b),
    50,
  );

printFigure(async () => {
  const figures = {};
  for (const [name, session] of Object.entries(SESSIONS)) {
    const times = {};
    let bytes = {};
    for (let r = 0; r < ROUNDS; r++) bytes = round(session, times);
    figures[name] = Object.fromEntries(
      Object.entries(times).map(([codec, { write, load }]) => [
        codec,
        { bytes: bytes[codec], write: median(write), load: median(load) },
      ]),
    );
  }
  return figures;
});
