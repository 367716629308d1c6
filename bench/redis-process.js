'use strict';

// The Redis store's figures of bench/run.js that a process's heap can sway, measured in a
// process of its own, as a deployment runs one store per process (the main process holds what
// every earlier phase left behind). The FileCache's `addSerializedSession` is measured here
// too, so that the two are compared side by side.
// node redis-process.js FIGURE URL N prints the figure as one JSON line.
const { timeSync, timeLoads, withStall, settle, printFigure } = require('./measure');
const {
  ourFileCache,
  ourRedisStore,
  removeDir,
  sessionIds,
  sessionOfSize,
  tempDir,
  template,
} = require('./stores');

const [figure, url, n] = process.argv.slice(2);
const ids = sessionIds(Number(n));

function perOp(ms) {
  return (ms * 1000) / ids.length; // µs per session
}

function addSerialized(store) {
  const figure = perOp(
    timeSync(() => ids.forEach((id) => store.addSerializedSession(id, template))),
  );
  store.close();
  return figure;
}

/**
 * N stored sessions of about 10 KB under a prefix of their own, and a store holding them all,
 * loaded by `get`: `coldGet` is the time per load.
 */
async function holdingBig(prefix) {
  const big = sessionOfSize(10 * 1024);
  let store = ourRedisStore(url, prefix);
  ids.forEach((id) => store.addSerializedSession(id, big));
  store.close();
  settle();
  store = ourRedisStore(url, prefix);
  const coldGet = perOp(await timeLoads(store, () => ids.forEach((id) => store.get(id))));
  settle();
  return { store, coldGet, bigBytes: big.length };
}

const FIGURES = {
  /** The operations that hold the event loop per call. */
  async redisOps() {
    const result = {};
    result.addSerialized = addSerialized(ourRedisStore(url, 'import:'));
    settle();
    const dir = tempDir();
    result.fileAddSerialized = addSerialized(ourFileCache(dir));
    removeDir(dir);

    const { store, coldGet, bigBytes } = await holdingBig('big:');
    Object.assign(result, { coldGet, bigBytes });
    store.close();

    const deleting = ourRedisStore(url, 'big:');
    result.delete = perOp(timeSync(() => ids.forEach((id) => deleting.delete(id))));
    deleting.close();
    return result;
  },

  /** keys() of a store holding the N sessions it lists. */
  async redisKeys() {
    const { store } = await holdingBig('keys:');
    const keys = timeSync(() => store.keys());
    store.close();
    return { keys };
  },

  /** One round storing the N held sessions, every one changed in use. */
  async redisRound() {
    const { store } = await holdingBig('round:');
    // Every held session changes in use, as a request changes it; one round stores them all.
    // (Loading N sessions took longer than a session stays watched without use, at large N.)
    for (const id of ids) store.get(id).data.benchChanged = true;
    settle();
    const written = await withStall(async () => {
      await store.writeChanges();
      await store.whenWritten();
    });
    if (store.stats().unwritten !== 0) throw new Error('a round left changed sessions unwritten');
    store.close();
    return { writeChanged: perOp(written.wall), writeStall: written.stall };
  },
};

printFigure(FIGURES[figure]);
