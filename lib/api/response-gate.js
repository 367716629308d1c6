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
 * the response goes on untouched. Otherwise that call and every later sending call are queued and made in
 * order once the promise settles (`write` answers false meanwhile, and 'drain' follows, so that
 * a piped body waits). Either way the response's own methods are put back.
 *
 * @param {any} res an `http.ServerResponse`, or the socket of a WebSocket upgrade
 * @param {() => Promise<unknown> | undefined} decide
 */
function holdResponse(res, decide) {
  /** name -> the response's own method it replaced, or undefined (the prototype's). */
  const replaced = new Map();
  /** [name, args] of the calls held back; null until `decide` asked for a wait. */
  let queue = null;
  let drainOwed = false;

  const putBack = () => {
    for (const [name, own] of replaced) {
      if (own === undefined) delete res[name];
      else res[name] = own;
    }
  };
  const release = () => {
    putBack();
    let flowing = true;
    for (const [name, args] of /** @type {Array<[string, unknown[]]>} */ (queue)) {
      try {
        const result = res[name](...args);
        if (name === 'write') flowing = result;
      } catch (error) {
        // As the call would have thrown into hammerhead, had it been made at once.
        res.destroy(error);
        return;
      }
    }
    if (drainOwed && flowing) res.emit('drain');
  };

  for (const name of SENDING) {
    if (typeof res[name] !== 'function') continue;
    replaced.set(name, Object.prototype.hasOwnProperty.call(res, name) ? res[name] : undefined);
    res[name] = (...args) => {
      if (queue === null) {
        let wait;
        try {
          wait = decide();
        } catch {
          // Whatever went wrong in deciding, the response itself goes on.
          wait = undefined;
        }
        if (wait === undefined) {
          putBack();
          return res[name](...args);
        }
        queue = [];
        wait.then(release, release);
      }
      queue.push([name, args]);
      if (name === 'write') {
        drainOwed = true;
        return false;
      }
      return name === 'flushHeaders' ? undefined : res;
    };
  }
}

module.exports = { holdResponse };
