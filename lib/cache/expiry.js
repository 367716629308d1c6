// @ts-check
'use strict';

const { isExpired } = require('../../index.js');
const { timeOf } = require('./held-sessions');

/** Candidates asked of the index at once. */
const BATCH = 256;
/** At most this many sessions judged per turn, however fast the clock says they went. */
const MAX_PER_TURN = 1024;

/**
 * Whether a session has expired at `now` by its live values, by the core's one expiry rule
 * (null or 0 disables a limit; a time that is not a number never expires a session).
 */
function hasExpired(session, now, { staleTimeout, maxToLive }) {
  let createdAt = NaN;
  let lastUsed = NaN;
  try {
    createdAt = timeOf(session.createdAt);
    lastUsed = timeOf(session.lastUsed);
  } catch {
    // A getter that throws gives times never due.
  }
  return isExpired(createdAt, lastUsed, now, staleTimeout, maxToLive);
}

/** Whether a session has gone unused for longer than `timeout` at `now`. */
function isIdle(session, now, timeout) {
  return hasExpired(session, now, { staleTimeout: timeout, maxToLive: null });
}

/**
 * Calls `remove(held)` for each held session that has expired at `now`, in the housekeeper's
 * slices, and `afterTurn()` at the end of each. The index names the candidates, so a cleanup
 * costs time in the sessions due, not in the sessions held; each is judged again by its live
 * values right before it is removed, since it may have been used meanwhile. `remove` must drop
 * the session from `held`. Resolves with false when the housekeeper stopped first.
 *
 * @param {import('./held-sessions').HeldSessions} held
 * @param {import('./housekeeper').Housekeeper} housekeeper
 */
async function removeExpired(held, housekeeper, now, policy, remove, afterTurn) {
  const { staleTimeout, maxToLive } = policy;
  // Judged still alive though the index listed them: kept out of its answers until the end,
  // so that every answer brings new candidates.
  const setAside = [];
  const candidates = function* () {
    for (;;) {
      const due = held.expired(now, staleTimeout, maxToLive, BATCH);
      if (due.length === 0) return;
      yield* due;
    }
  };
  const judge = (h) => {
    // Dropped meanwhile (deleted, or by another job): nothing to judge.
    if (!held.holds(h)) return;
    if (hasExpired(h.session, now, policy)) {
      remove(h);
    } else {
      held.setIndexed(h, false);
      setAside.push(h);
    }
  };
  const waiting = held.catchUp();
  if (waiting) await waiting;
  try {
    return await housekeeper.inSlices(candidates(), judge, {
      maxPerTurn: MAX_PER_TURN,
      afterTurn,
    });
  } finally {
    for (const h of setAside) held.setIndexed(h, true);
  }
}

module.exports = { removeExpired, hasExpired, isIdle };
