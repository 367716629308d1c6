'use strict';

// The Redis store's figures of bench/run.js that a process's heap can sway, measured in a
// process of its own, as a deployment runs one store per process (the main process holds what
// every earlier phase left behind). The FileCache's `addSerializedSession` is measured here
// too, so that the two are compared side by side.
// node redis-process.js URL N prints the figures as one JSON line.
const { timeSync, timeLoads, withStall, settle } = require('./measure');
const {
  ourFileCache,
  ourRedisStore,
  removeDir,
  sessionIds,
  tempDir,
  template,
} = require('./stores');

const [url, n] = process.argv.slice(2);
const ids = sessionIds(Number(n));

function perOp(ms) {
  return (ms * 1000) / ids.length; // µs per session
}

/** A session of about `bytes` bytes: the fixture with localStorage filled up to that size. */
function sessionOfSize(bytes) {
  const session = JSON.parse(template);
  const padding = Math.max(0, bytes - template.length - 64);
  session.data.localStorage = { 'http://bench.test': { data: { fill: 'x'.repeat(padding) } } };
  return JSON.stringify(session);
}

function addSerialized(store) {
  const figure = perOp(
    timeSync(() => ids.forEach((id) => store.addSerializedSession(id, template))),
  );
  store.close();
  return figure;
}

async function figures() {
  const big = sessionOfSize(10 * 1024);
  const result = { bigBytes: big.length };

  result.addSerialized = addSerialized(ourRedisStore(url, 'import:'));
  settle();
  const dir = tempDir();
  result.fileAddSerialized = addSerialized(ourFileCache(dir));
  removeDir(dir);

  let store = ourRedisStore(url, 'big:');
  ids.forEach((id) => store.addSerializedSession(id, big));
  store.close();
  settle();

  store = ourRedisStore(url, 'big:');
  result.coldGet = perOp(await timeLoads(() => ids.forEach((id) => store.get(id))));
  settle();
  result.keys = timeSync(() => store.keys());
  // Every held session changes in use, as a request changes it; one round stores them all.
  // (Loading N sessions took longer than a session stays watched without use, at large N.)
  for (const id of ids) store.get(id).data.benchChanged = true;
  settle();
  const written = await withStall(async () => {
    await store.writeChanges();
    await store.whenWritten();
  });
  result.writeChanged = perOp(written.wall);
  result.writeStall = written.stall;
  if (store.stats().unwritten !== 0) throw new Error('a round left changed sessions unwritten');
  store.close();

  store = ourRedisStore(url, 'big:');
  result.delete = perOp(timeSync(() => ids.forEach((id) => store.delete(id))));
  store.close();
  return result;
}

figures().then(
  (result) => {
    process.stdout.write(JSON.stringify(result));
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
