'use strict';

/**
 * `lastUsed` only drives expiry measured in minutes and days, so a cached `get` updates it at
 * most once a second per session: `updateLastUsed()`, a hooked property setter in rammerhead,
 * costs several times the rest of the lookup.
 */
const TOUCH_INTERVAL_MS = 1000;
/** How often the coarse clock is refreshed while a store is open. */
const TICK_MS = 100;
/** When the store last called `updateLastUsed()` on a session, by the coarse clock. */
const TOUCHED_AT = Symbol('touchedAt');

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

/** Whether a `get` should call `updateLastUsed()` now: never touched, or not for a second. */
function isDue(session) {
  return !(session[TOUCHED_AT] > clock.now - TOUCH_INTERVAL_MS);
}

function touch(session) {
  session.updateLastUsed();
  session[TOUCHED_AT] = clock.now;
}

/** Whether a `get` has called `updateLastUsed()` on this session object. */
function wasTouched(session) {
  return session[TOUCHED_AT] !== undefined;
}

module.exports = { useClock, isDue, touch, wasTouched };
