'use strict';

const { performance } = require('perf_hooks');
const { timeOf } = require('./held-sessions');

/** Longest stretch a cleanup holds the event loop before it yields. */
const SLICE_MS = 1;
/** Candidates asked of the index at once. */
const BATCH = 256;
/** At most this many sessions judged per slice, however fast the clock says they went. */
const MAX_PER_SLICE = 1024;

/** The expiry rule of the core, over a session's live values (null or 0 disables a limit). */
function hasExpired(session, now, staleTimeout, maxToLive) {
  return (
    (staleTimeout > 0 && now - timeOf(session.lastUsed) > staleTimeout) ||
    (maxToLive > 0 && now - timeOf(session.createdAt) > maxToLive)
  );
}

/**
 * Calls `remove(held)` for each held session that has expired at `now`, in slices of about
 * SLICE_MS between which the event loop runs, and `endOfSlice()` at the end of each slice. The
 * index names the candidates, so a cleanup costs time in the sessions due, not in the sessions
 * held; each is judged again by its live values right before it is removed, since it may have
 * been used meanwhile. `remove` must drop the session from `held`.
 */
async function removeExpired(held, now, staleTimeout, maxToLive, remove, endOfSlice = () => {}) {
  // Judged still alive though the index listed them: kept out of its answers until the end,
  // so that every answer brings new candidates.
  const setAside = [];
  try {
    for (;;) {
      const deadline = performance.now() + SLICE_MS;
      let judged = 0;
      do {
        const due = held.expired(now, staleTimeout, maxToLive, BATCH);
        if (due.length === 0) return endOfSlice();
        judged += due.length;
        for (const h of due) {
          if (hasExpired(h.session, now, staleTimeout, maxToLive)) {
            remove(h);
          } else {
            held.setIndexed(h, false);
            setAside.push(h);
          }
          // A removal may touch the disk, so the clock is read after each; at least one per
          // slice, so that a slow disk still makes progress.
          if (performance.now() >= deadline) break;
        }
      } while (judged + BATCH <= MAX_PER_SLICE && performance.now() < deadline);
      endOfSlice();
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    for (const h of setAside) held.setIndexed(h, true);
  }
}

module.exports = { removeExpired, hasExpired };
