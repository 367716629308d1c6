'use strict';

// One figure of bench/topology.js, in a process of its own, so that neither the servers'
// harness (which waits on redis-cli) nor an earlier phase's heap sways it.
// node failover-process.js URL prints `ready` once its sessions are stored, starts on the line
// `go` (sent as the master is killed), and prints the figure as one JSON line.
const readline = require('readline');
const { now } = require('./measure');
const { ourRedisStore, template } = require('./stores');

const HELD = 200;
const [url] = process.argv.slice(2);

/**
 * A store holding HELD sessions, every one changed and stored again and again from `go` on:
 * from then to the first round that stores them all (every bucket served again), the event
 * loop's worst stall meanwhile, and the `get`s of held sessions not answered.
 */
async function failover(started) {
  const store = ourRedisStore(url, 'failover:', { commandTimeout: 500 });
  const ids = Array.from({ length: HELD }, (_, i) => `failover${i}`);
  for (const id of ids) store.addSerializedSession(id, template);
  console.log('ready');
  await started;
  const killedAt = now();
  let worst = 0;
  let last = now();
  const monitor = setInterval(() => {
    const at = now();
    worst = Math.max(worst, at - last - 1);
    last = at;
  }, 1);
  let missed = 0;
  let storedAt;
  try {
    for (let round = 0; storedAt === undefined; round++) {
      for (const id of ids) {
        const session = store.get(id);
        if (session) session.data.benchRound = round;
        else missed++;
      }
      await store.writeChanges();
      await store.whenWritten();
      const { available, unwritten } = store.stats();
      if (available && unwritten === 0 && round > 0) storedAt = now();
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    clearInterval(monitor);
    store.close();
  }
  return { pause: storedAt - killedAt, stall: worst, missed, held: HELD };
}

const lines = readline.createInterface({ input: process.stdin });
const started = new Promise((resolve) => lines.on('line', (line) => line === 'go' && resolve()));
failover(started).then(
  (figure) => {
    console.log(JSON.stringify(figure));
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
