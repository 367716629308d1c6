'use strict';

// One store's hot path, measured in a process of its own: node hot-path.js KIND N DIR
// prints {"hotGet": ns, "hotHas": ns}. A deployment runs one store per process; measuring each
// alone keeps every store's code and heap free of the others' (in one process, the call sites
// the stores share and the garbage of earlier phases move the figures by tens of percent).
const fs = require('fs');
const path = require('path');
const stores = require('./stores');

const HOT_OPS = 2_000_000;
const HOT_REPEATS = 5;

const [kind, n, dir] = process.argv.slice(2);
const ids = stores.sessionIds(Number(n));

/** Nanoseconds per call of `op(id)` over the ids: the best of HOT_REPEATS after a warm-up. */
function hotLoop(op) {
  const rounds = Math.max(1, Math.round(HOT_OPS / ids.length));
  const run = () => {
    const start = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) for (let i = 0; i < ids.length; i++) op(ids[i]);
    return Number(process.hrtime.bigint() - start) / (rounds * ids.length);
  };
  run();
  let best = Infinity;
  for (let i = 0; i < HOT_REPEATS; i++) best = Math.min(best, run());
  return best;
}

/** The store of `kind` holding the N sessions, loaded from DIR's files or created. */
function holding() {
  const loaded = (store) => {
    for (const id of ids) store.get(id);
    return store;
  };
  const created = (store) => {
    for (const id of ids) store.add(id);
    return store;
  };
  switch (kind) {
    case 'map': {
      // The baseline: a Map holding the same sessions, get + updateLastUsed().
      const map = new Map();
      for (const id of ids) {
        const text = fs.readFileSync(path.join(dir, `${id}.rhfsession`), 'utf8');
        map.set(id, stores.sessionClass.DeserializeSession(id, text));
      }
      return {
        get(id) {
          const session = map.get(id);
          if (session !== undefined) session.updateLastUsed();
          return session;
        },
        has: (id) => map.has(id),
      };
    }
    case 'file':
      return loaded(stores.ourFileCache(dir));
    case 'redis':
      // DIR is the Redis URL here, the sessions stored under the prefix the bench filled.
      return loaded(stores.ourRedisStore(dir, 'hot:'));
    case 'memory':
      return created(stores.ourMemoryStore());
    case 'original-file':
      return loaded(stores.originalFileCache(dir));
    case 'original-file-quiet':
      return loaded(stores.originalFileCache(dir, { logger: stores.quiet }));
    case 'original-memory':
      return created(stores.originalMemoryStore());
    default:
      throw new Error(`unknown store kind ${kind}`);
  }
}

const store = holding();
global.gc();
const figures = {
  hotGet: hotLoop((id) => store.get(id)),
  hotHas: hotLoop((id) => store.has(id)),
};
process.stdout.write(JSON.stringify(figures));
// Neither store's close() is measured here, and writing N sessions back would only cost time.
process.exit(0);
