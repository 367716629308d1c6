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

/**
 * Calls `remove(id)` for each session of `map` that has expired, in slices of about SLICE_MS
 * between which the event loop runs. A session is judged and removed in the same slice, by its
 * values at that moment; sessions added meanwhile may or may not be judged.
 */
async function removeExpired(map, now, staleTimeout, maxToLive, remove) {
  const entries = map.entries();
  for (;;) {
    const deadline = performance.now() + SLICE_MS;
    let batch;
    let judged = 0;
    do {
      batch = nextBatch(entries);
      judged += batch.length;
      for (const id of expiredSessionIds(batch, now, staleTimeout, maxToLive)) remove(id);
    } while (batch.length === BATCH && judged < MAX_PER_SLICE && performance.now() < deadline);
    if (batch.length < BATCH) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

module.exports = { removeExpired };
