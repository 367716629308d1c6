'use strict';

// The Redis store on a Redis Cluster of 3 masters and 3 replicas, and behind 3 Sentinels, in
// `npm run bench`: how evenly the masters share the sessions, a cold `get` and writes against
// one server, and how long a master killed keeps the store from storing. Real servers (those
// the tests start), killed with SIGKILL; the cluster's node timeout and the Sentinels'
// down-after time are both 1 s, which bounds how soon a failover can start.
const { spawn } = require('child_process');
const path = require('path');
const readline = require('readline');
const { RedisCluster } = require('../__test__/support/redis-cluster');
const { RedisSentinelGroup } = require('../__test__/support/redis-sentinel');
const { processFigure } = require('./redis');

/** How the cluster's masters share the sessions stored under `prefix`. */
async function spread(cluster, prefix) {
  const counts = (await cluster.keysPerMaster(`${prefix}*:session:*`)).map((m) => m.count);
  const total = counts.reduce((a, b) => a + b, 0);
  return { perMaster: counts, largestShare: (100 * Math.max(...counts)) / total };
}

/**
 * The figure of failover-process.js: its store holds sessions, then `kill()` takes a master away
 * as the process starts measuring.
 */
function failover(url, kill) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'failover-process.js'), url], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let killing = Promise.resolve();
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'ready') {
        child.stdin.write('go\n');
        killing = kill();
      } else {
        killing.then(() => resolve(JSON.parse(line)), reject);
      }
    });
    child.once(
      'exit',
      (code) => code !== 0 && reject(new Error(`failover-process exited ${code}`)),
    );
  });
}

/** Runs `measure(running)` on servers `start()` started, and stops them after. */
async function on(start, measure) {
  const running = await start();
  try {
    return await measure(running);
  } finally {
    await running.close();
  }
}

async function topologyFigures(n) {
  const cluster = await on(
    () => RedisCluster.start(),
    async (running) => {
      const ops = await processFigure('redisOps', running.url, n);
      // redisOps leaves the sessions it stored with addSerializedSession under `import:`.
      const shares = await spread(running, 'import:');
      const [victim] = await running.masters();
      const lost = await failover(running.url, () => running.killMaster(victim.server));
      return { ...ops, ...shares, failover: lost };
    },
  );
  const sentinel = await on(
    () => RedisSentinelGroup.start(),
    async (running) => ({ failover: await failover(running.url, () => running.killMaster()) }),
  );
  return { cluster, sentinel };
}

module.exports = { topologyFigures };
