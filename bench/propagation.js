'use strict';

// How fast a change made on one host reaches another host holding the same session, and how
// hosts changing one session at once fare: two Redis stores, each in a process of its own (this
// one and a child), on the bench's redis-server.
const { spawn } = require('child_process');
const path = require('path');
const { performance } = require('perf_hooks');
const readline = require('readline');
const { ourRedisStore } = require('./stores');

const SITE = 'http://bench.test/';
const ID = 'propagated';

/** The other host: `send(command)` resolves with its answer. */
function startHost(url, prefix) {
  const child = spawn(
    process.execPath,
    [path.join(__dirname, 'propagation-host.js'), url, prefix],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const answers = [];
  readline
    .createInterface({ input: child.stdout })
    .on('line', (line) => answers.shift()(JSON.parse(line)));
  return {
    send(command) {
      return new Promise((resolve) => {
        answers.push(resolve);
        child.stdin.write(`${JSON.stringify(command)}\n`);
      });
    },
    stop: () => child.kill(),
  };
}

const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

/**
 * `changes` times: a cookie set here as a response sets it; the time until the other host's
 * held copy sends it (it looks every millisecond, and says so), with no round run on either
 * host. Then `contended` rounds in which both hosts set a cookie of their own and write at the
 * same moment: conflicts merged, and whether every cookie is in the end on both hosts and in
 * Redis.
 */
async function propagationFigures(server, template, { changes = 1000, contended = 200 } = {}) {
  const prefix = 'propagation:';
  const here = ourRedisStore(server.url, prefix);
  const there = startHost(server.url, prefix);
  try {
    here.addSerializedSession(ID, template);
    const session = here.get(ID, false);
    if (!(await there.send({ do: 'hold', id: ID })))
      throw new Error('the other host has no session');
    const delays = [];
    for (let i = 0; i < changes; i++) {
      const cookie = `n=${i}`;
      const seen = there.send({ do: 'await', cookie });
      const start = performance.now();
      // As hammerhead does for a response that sets a cookie; the store writes it by itself.
      here.get(ID).cookies.setByServer(SITE, [cookie]);
      // Timed on this process's clock alone, the answer's trip through the pipe included: two
      // processes' wall clocks disagree as soon as the system clock is stepped between their
      // starts (one run measured every change 5.1 s late).
      await seen;
      delays.push(performance.now() - start);
    }
    delays.sort((a, b) => a - b);

    const expected = new Set();
    for (let i = 0; i < contended; i++) {
      expected.add(`a${i}=1`).add(`b${i}=1`);
      session.cookies.setByServer(SITE, [`a${i}=1`]);
      await there.send({ do: 'set', cookie: `b${i}=1` });
      await Promise.all([
        here.writeChanges().then(() => here.whenWritten()),
        there.send({ do: 'write' }),
      ]);
    }
    // Until neither host has anything left to write.
    for (let settled = false; !settled;) {
      await Promise.all([
        here.writeChanges().then(() => here.whenWritten()),
        there.send({ do: 'write' }),
      ]);
      const theirs = await there.send({ do: 'stats' });
      settled = here.stats().unwritten === 0 && theirs.unwritten === 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const has = (cookies) => [...expected].every((c) => cookies.split('; ').includes(c));
    const loader = ourRedisStore(server.url, prefix);
    const stored = loader.get(ID).cookies.getClientString(SITE);
    loader.close();
    const theirStats = await there.send({ do: 'stats' });
    return {
      propagationP50: percentile(delays, 50),
      propagationP99: percentile(delays, 99),
      propagationMax: delays[delays.length - 1],
      changes,
      contended,
      merged: here.stats().merged + theirStats.merged,
      lastWriterWins: here.stats().lastWriterWins + theirStats.lastWriterWins,
      allCookiesKept:
        has(session.cookies.getClientString(SITE)) &&
        has(await there.send({ do: 'cookies' })) &&
        has(stored),
    };
  } finally {
    there.stop();
    here.close();
  }
}

module.exports = { propagationFigures };
