'use strict';

const { expiredIndices } = require('../index.js');

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

module.exports = { expiredSessionIds };
