// @ts-check
'use strict';

/** How often the coarse clock is refreshed while a store is open. */
const TICK_MS = 100;

/** Epoch milliseconds to within TICK_MS: a property read, where `Date.now()` costs ~50 ns. */
const clock = { now: Date.now() };
let users = 0;
let timer = null;

/**
 * Keeps the clock running for one more store. Returns its release, which may be called more
 * than once (a store closed twice); the last store released stops the clock.
 */
function useClock() {
  if (users++ === 0) {
    clock.now = Date.now();
    timer = setInterval(() => {
      clock.now = Date.now();
    }, TICK_MS);
    timer.unref();
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--users > 0) return;
    clearInterval(timer);
    timer = null;
  };
}

module.exports = { clock, useClock };
