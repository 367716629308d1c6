'use strict';

const { performance } = require('perf_hooks');
const { expiredIndices } = require('../index.js');

/** Longest stretch a cleanup holds the event loop before it yields. */
const SLICE_MS = 1;
/** Sessions judged per native call. */
const BATCH = 256;
/** At most this many sessions per slice, however fast the clock says they went. */
const MAX_PER_SLICE = 1024;

/**
 * Ids of the sessions among `entries` ([id, session] pairs) that break the limits, judged by
 * the sessions' own createdAt/lastUsed with the core's expiry rule in a single native call.
 */
function expiredSessionIds(entries, now, staleTimeout, maxToLive) {
  const createdAt = new Float64Array(entries.length);
  const lastUsed = new Float64Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const session = entries[i][1];
    createdAt[i] = session.createdAt;
    lastUsed[i] = session.lastUsed;
  }
  return expiredIndices(createdAt, lastUsed, now, staleTimeout, maxToLive).map(
    (i) => entries[i][0],
  );
}

function nextBatch(entries) {
  const batch = [];
  for (let next = entries.next(); !next.done; next = entries.next()) {
    if (batch.push(next.value) === BATCH) break;
  }
  return batch;
}

/** The entries of those ids still in `map`, with their live sessions. */
function liveEntries(map, ids) {
  const entries = [];
  for (const id of ids) {
    const session = map.get(id);
    if (session !== undefined) entries.push([id, session]);
  }
  return entries;
}

/**
 * Calls `remove(id)` for each session of `map` that has expired, in slices of about SLICE_MS
 * between which the event loop runs (a removal may touch the disk, so the clock is read after
 * each). Sessions are judged and removed in the same slice, by their live values: those judged
 * but not reached are looked up and judged again in the next slice, since they may have been
 * used or replaced meanwhile. Sessions added meanwhile may or may not be judged.
 */
async function removeExpired(map, now, staleTimeout, maxToLive, remove) {
  const entries = map.entries();
  let carried = [];
  for (;;) {
    const deadline = performance.now() + SLICE_MS;
    let judged = 0;
    for (;;) {
      const fromIterator = carried.length === 0;
      const batch = fromIterator ? nextBatch(entries) : liveEntries(map, carried);
      carried = [];
      if (fromIterator && batch.length === 0) return;
      judged += batch.length;
      const expired = expiredSessionIds(batch, now, staleTimeout, maxToLive);
      let removed = 0;
      // At least one per slice, so that a slow disk still makes progress.
      while (removed < expired.length) {
        remove(expired[removed++]);
        if (performance.now() >= deadline) break;
      }
      if (removed < expired.length) {
        carried = expired.slice(removed);
        break;
      }
      if (judged + BATCH > MAX_PER_SLICE || performance.now() >= deadline) break;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

module.exports = { removeExpired };
