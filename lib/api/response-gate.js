// @ts-check
'use strict';

/**
 * The calls that send a response's head (hammerhead's `writeHead`, or the first `write` or
 * `end`, which send it implicitly); a WebSocket's socket has only `write` and `end`.
 */
const SENDING = ['writeHead', 'flushHeaders', 'write', 'end'];

/**
 * Holds back a response until what `decide` returns has settled. `decide` is called once, at
 * the first call that would send the response's head; when it returns undefined (or throws)
 * the response goes on untouched. Otherwise that call and every later sending call are queued
 * and made in order once the promise settles (`write` answers false meanwhile, and 'drain'
 * follows, so that a piped body waits). Either way the methods are put back as they were,
 * unless other code has wrapped them since (its wrappers stay, and calls through them pass
 * straight on).
 *
 * @param {any} res an `http.ServerResponse`, or the socket of a WebSocket upgrade
 * @param {() => Promise<unknown> | undefined} decide
 */
function holdResponse(res, decide) {
  /** name -> [the method as it was, the gate's]. */
  const methods = new Map();
  /** Not decided yet, holding the calls in `queue`, or passing every call straight on. */
  let state = 'undecided';
  /** @type {Array<[string, unknown[]]>} */
  const queue = [];
  let drainOwed = false;

  const call = (name, args) => methods.get(name)[0].apply(res, args);
  // Assigned, never deleted: deleting a property would turn the response into a slow
  // dictionary-mode object for everything that reads it afterwards.
  const putBack = () => {
    for (const [name, [method, gate]] of methods) {
      if (res[name] === gate) res[name] = method;
    }
  };
  const release = () => {
    state = 'passing';
    putBack();
    let flowing = true;
    for (const [name, args] of queue.splice(0)) {
      try {
        const result = call(name, args);
        if (name === 'write') flowing = result;
      } catch (error) {
        // As the call would have thrown into its caller, had it been made at once.
        res.destroy(error);
        return;
      }
    }
    if (drainOwed && flowing) res.emit('drain');
  };

  for (const name of SENDING) {
    if (typeof res[name] !== 'function') continue;
    const gate = (...args) => {
      if (state === 'undecided') {
        let wait;
        try {
          wait = decide();
        } catch {
          // Whatever went wrong in deciding, the response itself goes on.
          wait = undefined;
        }
        if (wait === undefined) {
          state = 'passing';
          putBack();
        } else {
          state = 'holding';
          wait.then(release, release);
        }
      }
      if (state === 'passing') return call(name, args);
      queue.push([name, args]);
      if (name === 'write') {
        drainOwed = true;
        return false;
      }
      return name === 'flushHeaders' ? undefined : res;
    };
    methods.set(name, [res[name], gate]);
    res[name] = gate;
  }
}

module.exports = { holdResponse };
