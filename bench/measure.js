'use strict';

// How the benchmark times things: wall time, the event loop's longest stall, and the
// collection before a timed phase. Shared by bench/run.js and its child processes.
const { monitorEventLoopDelay, performance } = require('perf_hooks');

function now() {
  return Number(process.hrtime.bigint()) / 1e6; // ms
}

function timeSync(fn) {
  const start = now();
  fn();
  return now() - start;
}

async function timeAsync(fn) {
  const start = now();
  await fn();
  return now() - start;
}

/**
 * Times loads of sessions made in one synchronous stretch into `store`, and the work they leave
 * for later turns of the event loop: ours brings its index of held sessions up to date in the
 * background, in slices, which is theirs too (the original leaves nothing).
 */
function timeLoads(store, fn) {
  return timeAsync(async () => {
    fn();
    await new Promise(setImmediate);
    if (store.held && store.held.catchUp) await store.held.catchUp();
  });
}

/**
 * Runs `fn` and reports its wall time, the time the JavaScript thread was busy meanwhile, and
 * the longest the event loop was held at once.
 */
async function withStall(fn) {
  // A collection forced by settle() may still be finishing; its pauses are not fn's.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  // The histogram counts from its first tick: without this, a run that blocks from its start
  // (as the original's synchronous ones do) would not show.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const before = performance.eventLoopUtilization();
  const wall = await timeAsync(fn);
  // A synchronous stretch shows as the delay of the histogram's next timer; let it fire.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const { active } = performance.eventLoopUtilization(before);
  histogram.disable();
  return { wall, busy: Math.min(active, wall), stall: histogram.max / 1e6 };
}

/** The `p`th percentile of `sorted` (ascending). */
function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

/**
 * Sessions idle for cacheTimeout have long left the young generation; collecting before a timed
 * phase keeps the promotion of sessions the benchmark itself just loaded out of the figure.
 */
function settle() {
  if (global.gc) global.gc();
}

/**
 * Runs one figure in a child process of the benchmark: prints its result as one JSON line and
 * exits, or prints the error and exits with 1.
 */
function printFigure(figure) {
  figure().then(
    (result) => {
      process.stdout.write(JSON.stringify(result));
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

module.exports = {
  now,
  timeSync,
  timeAsync,
  timeLoads,
  withStall,
  percentile,
  settle,
  printFigure,
};
