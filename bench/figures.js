'use strict';

// One figure of `npm run bench` for one store, in a process of its own: a deployment runs one
// store per process, and a figure measured after other phases would carry their heap.
// node --expose-gc figures.js FIGURE KIND N prints the figure as one JSON line; KIND is `ours`
// or `original` (rammerhead's own store, with RAMMERHEAD_DIR).
const fs = require('fs');
const path = require('path');
const { timeSync, timeAsync, timeLoads, withStall, settle, printFigure } = require('./measure');
const stores = require('./stores');

const { DAY, NEVER, template, tempDir, removeDir } = stores;
const [figure, kind, n] = process.argv.slice(2);
const N = Number(n);
const ids = stores.sessionIds(N);

/**
 * Every store and session reads this clock, so a figure can let sessions age by days without
 * waiting, the same way for every store.
 */
const realNow = Date.now;
let clockOffset = 0;
Date.now = () => realNow() + clockOffset;
function advanceClock(ms) {
  clockOffset += ms;
}

/** What differs between our stores and rammerhead's own in the figures below. */
const KINDS = {
  ours: {
    fileCache: stores.ourFileCache,
    memoryStore: stores.ourMemoryStore,
    flush: (store) => store.checkCache(),
    startupCleanup: (store) => store.removeStaleSessions(),
    heldCleanup: (store) => store.removeStaleSessions(),
    memoryCleanup: (store) => store._removeStaleSessions(),
  },
  original: {
    fileCache: stores.originalFileCache,
    memoryStore: stores.originalMemoryStore,
    flush: (store) => store._saveCacheToDisk(),
    // The original cleans up, synchronously, in its constructor.
    startupCleanup: () => {},
    heldCleanup: (store) => store._removeStaleSessions(DAY, null),
    memoryCleanup: (store) => store._cleanupRun(30 * 60 * 1000, 4 * 60 * 60 * 1000),
  },
};
const store = KINDS[kind];

function perOp(ms) {
  return (ms * 1000) / N; // µs per session
}

/** N session files, all last used `age` ms ago. */
function sessionDir(age) {
  return stores.sessionDir(ids, age);
}

/** Writes the N session files in `dir`, as another process would, last used `age` ms ago. */
function writeSessionFiles(dir, age) {
  stores.writeSessionFiles(dir, ids, age);
}

/** A FileCache holding the N sessions of fresh files, loaded by `get`. */
async function loadedFileCache(dir, options) {
  const cache = store.fileCache(dir, options);
  const coldGet = perOp(await timeLoads(cache, () => ids.forEach((id) => cache.get(id))));
  settle();
  return { cache, coldGet };
}

const FIGURES = {
  /** The FileCache's operations that hold the event loop per call, not in the background. */
  async fileOps() {
    const figures = {};
    const dir = sessionDir(0);
    const { cache, coldGet } = await loadedFileCache(dir);
    figures.coldGet = coldGet;
    cache.close();

    let cache2 = store.fileCache(dir);
    figures.delete = perOp(timeSync(() => ids.forEach((id) => cache2.delete(id))));
    cache2.close();
    removeDir(dir);

    const empty = tempDir();
    cache2 = store.fileCache(empty);
    const added = await timeAsync(async () => {
      figures.add = perOp(timeSync(() => ids.forEach((id) => cache2.add(id))));
      // Ours writes in the background; the original has written everything already.
      if (cache2.whenWritten) await cache2.whenWritten();
    });
    figures.addWritten = perOp(added);
    cache2.close();
    removeDir(empty);

    const imports = tempDir();
    cache2 = store.fileCache(imports);
    figures.addSerialized = perOp(
      timeSync(() => ids.forEach((id) => cache2.addSerializedSession(id, template))),
    );
    cache2.close();
    removeDir(imports);
    return figures;
  },

  /** keys() of a FileCache holding N sessions whose N files are there too. */
  async fileKeys() {
    const dir = sessionDir(0);
    const { cache } = await loadedFileCache(dir);
    const keys = timeSync(() => cache.keys());
    cache.close();
    removeDir(dir);
    return { keys };
  },

  /** A cache check moving N idle sessions, all used, out of memory. */
  async fileFlush() {
    const dir = sessionDir(0);
    const { cache } = await loadedFileCache(dir);
    advanceClock(DAY);
    settle();
    const flushed = await withStall(() => store.flush(cache));
    cache.close();
    removeDir(dir);
    return {
      flush: perOp(flushed.wall),
      flushBusy: perOp(flushed.busy),
      flushStall: flushed.stall,
    };
  },

  /** Constructor time over N fresh files, and cleanup over N stale ones. */
  async startup() {
    const fresh = sessionDir(0);
    const staleCleanupOptions = { staleTimeout: DAY, maxToLive: null, staleCheckInterval: NEVER };
    let cache;
    const constructor = timeSync(() => {
      cache = store.fileCache(fresh, { staleCleanupOptions });
    });
    await store.startupCleanup(cache);
    cache.close();
    removeDir(fresh);

    const stale = sessionDir(2 * DAY);
    settle();
    const swept = await withStall(async () => {
      cache = store.fileCache(stale, { staleCleanupOptions });
      await store.startupCleanup(cache);
    });
    const left = fs.readdirSync(stale).filter((name) => name.endsWith('.rhfsession')).length;
    cache.close();
    removeDir(stale);
    if (left !== 0) throw new Error(`cleanup left ${left} stale files`);
    return { constructor, cleanup: perOp(swept.wall), cleanupStall: swept.stall };
  },

  /** Stale cleanup of a FileCache that holds N expired sessions in memory (their files fresh). */
  async heldExpiry() {
    const dir = sessionDir(0);
    const staleCleanupOptions = { staleTimeout: DAY, maxToLive: null, staleCheckInterval: NEVER };
    const cache = store.fileCache(dir, { staleCleanupOptions });
    await store.startupCleanup(cache);
    await timeLoads(cache, () => ids.forEach((id) => cache.get(id)));
    advanceClock(2 * DAY);
    writeSessionFiles(dir, 0);
    settle();
    const run = await withStall(() => store.heldCleanup(cache));
    const left = cache.keys().length;
    cache.close();
    removeDir(dir);
    if (left !== 0) throw new Error(`cleanup left ${left} expired sessions`);
    return { heldExpiry: perOp(run.wall), heldExpiryStall: run.stall };
  },

  /** One MemoryStore cleanup over N sessions, none of them expired. */
  async memoryCleanupNone() {
    const memory = store.memoryStore();
    await timeLoads(memory, () => ids.forEach((id) => memory.add(id)));
    settle();
    const none = await withStall(() => store.memoryCleanup(memory));
    if (memory.close) memory.close();
    return { cleanupNoneStall: none.stall };
  },

  /** One MemoryStore cleanup over N sessions, all of them expired. */
  async memoryCleanupAll() {
    const memory = store.memoryStore();
    await timeLoads(memory, () => ids.forEach((id) => memory.add(id)));
    advanceClock(DAY);
    settle();
    const all = await withStall(() => store.memoryCleanup(memory));
    const left = memory.keys().length;
    if (memory.close) memory.close();
    if (left !== 0) throw new Error(`cleanup left ${left} expired sessions`);
    return { cleanupAllStall: all.stall };
  },
};

printFigure(FIGURES[figure]);
