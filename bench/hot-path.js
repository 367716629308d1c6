'use strict';

// One operation of one store's hot path, measured in a process of its own:
// node hot-path.js KIND N DIR OP (OP: get or has) prints the nanoseconds per call. A deployment
// runs one store per process; measuring each store and each operation alone keeps them free of
// each other's compiled code, heap and cache state. (Timed after `get` in the same process, `has`
// depended on what that loop had left behind: at N = 100,000 it measured up to twice as slow
// as alone, by more for some stores than for others.)
const fs = require('fs');
const path = require('path');
const stores = require('./stores');

const HOT_OPS = 2_000_000;
const HOT_REPEATS = 5;

const [kind, n, dir, op] = process.argv.slice(2);
const ids = stores.sessionIds(Number(n));

/**
 * Nanoseconds per call of `op(id)` over the ids: the best of HOT_REPEATS after a warm-up. Every
 * result is counted, so the compiler cannot drop a call whose result goes unused, and every id
 * must be found.
 */
function hotLoop(op) {
  const rounds = Math.max(1, Math.round(HOT_OPS / ids.length));
  const run = () => {
    let found = 0;
    const start = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) for (let i = 0; i < ids.length; i++) if (op(ids[i])) found++;
    const ns = Number(process.hrtime.bigint() - start) / (rounds * ids.length);
    if (found !== rounds * ids.length)
      throw new Error(`${kind}: ${found} of ${rounds * ids.length} found`);
    return ns;
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
const ops = { get: (id) => store.get(id), has: (id) => store.has(id) };
if (!(op in ops)) throw new Error(`unknown operation ${op}`);
process.stdout.write(String(hotLoop(ops[op])));
// Neither store's close() is measured here, and writing N sessions back would only cost time.
process.exit(0);
