'use strict';

// The figures of the request step (see lib/api/request-step.js) in `npm run bench`, each in a
// process of its own:
// - stepLoad KIND: the event-loop time a cold load costs when the step makes it (`prepare`: the
//   read off the JavaScript thread, then the revive on it), beside a `get` that loads on the
//   JavaScript thread, for KIND "file" (FileCache) or "redis";
// - versionCheck: the wait of a request of a held Redis session for its version check,
//   one request at a time and eight at once, p50 and p99.
// node request-process.js FIGURE KIND URL N prints the figure as one JSON line.
const { performance } = require('perf_hooks');
const { percentile, settle, printFigure } = require('./measure');
const {
  ourFileCache,
  ourRedisStore,
  removeDir,
  sessionDir,
  sessionIds,
  template,
} = require('./stores');

const [figure, kind, url, n] = process.argv.slice(2);
/** Loads measured: enough for a stable figure, few enough for a quick run at any N. */
const ids = sessionIds(Math.min(Number(n), 2000));
/** Requests in flight at once, as a proxy's clients send them. */
const CONCURRENCY = 8;

/** A store holding nothing, whose backend holds `ids`; `done()` lets it go. */
function storeOf(storeKind, prefix) {
  if (storeKind === 'file') {
    const dir = sessionDir(ids, 0);
    const store = ourFileCache(dir);
    return { store, done: () => (store.close(), removeDir(dir)) };
  }
  let store = ourRedisStore(url, prefix);
  for (const id of ids) store.addSerializedSession(id, template);
  store.close();
  store = ourRedisStore(url, prefix);
  return { store, done: () => store.close() };
}

/** Runs `job(item)` for every item, `concurrency` at a time. */
async function inFlight(items, job, concurrency = CONCURRENCY) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await job(items[next++]);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * Event-loop microseconds per session of `load` over every id into `store`, and the wall time;
 * with the work the loads leave for later turns (see `timeLoads` in measure.js).
 */
async function loopTimePerLoad(store, load) {
  settle();
  const before = performance.eventLoopUtilization();
  const start = performance.now();
  await load();
  await new Promise(setImmediate);
  await store.held.catchUp();
  const wall = performance.now() - start;
  const { active } = performance.eventLoopUtilization(before);
  return { loop: (active * 1000) / ids.length, wall: (wall * 1000) / ids.length };
}

const FIGURES = {
  async stepLoad() {
    // Each way once unmeasured, so that neither is measured with code the other warmed up.
    const measure = async (round) => {
      const stepped = storeOf(kind, `step${round}:`);
      const step = await loopTimePerLoad(stepped.store, () =>
        inFlight(ids, (id) => stepped.store.prepare([id]) || Promise.resolve()),
      );
      if (stepped.store.stats().held !== ids.length) throw new Error('a load went missing');
      stepped.done();
      const direct = storeOf(kind, `direct${round}:`);
      const get = await loopTimePerLoad(direct.store, async () => {
        for (const id of ids) direct.store.get(id);
      });
      direct.done();
      return { stepLoop: step.loop, stepWall: step.wall, getLoop: get.loop };
    };
    await measure(0);
    return measure(1);
  },

  async versionCheck() {
    const { store, done } = storeOf('redis', 'check:');
    for (const id of ids) store.get(id);
    const helds = ids.map((id) => store.held.map.get(id));
    const waits = async (concurrency) => {
      const times = [];
      settle();
      await inFlight(
        helds,
        async (held) => {
          const start = performance.now();
          await store.remote.check(held);
          times.push(performance.now() - start);
        },
        concurrency,
      );
      return times.sort((a, b) => a - b);
    };
    const alone = await waits(1);
    const together = await waits(CONCURRENCY);
    done();
    return {
      checkP50: percentile(alone, 50),
      checkP99: percentile(alone, 99),
      checkP50Concurrent: percentile(together, 50),
      checkP99Concurrent: percentile(together, 99),
    };
  },
};

printFigure(FIGURES[figure]);
