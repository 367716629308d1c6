'use strict';

// What the tests' Redis clusters and Sentinel groups share: free ports, waiting for a state
// that says what it still lacks, and INFO read as fields.
const { freePort } = require('../helpers');

/** `count` different free ports: each free on its own when picked. */
async function freePorts(count) {
  const ports = new Set();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * Polls `problem()` until it returns nothing; it returns what is still wrong, so that a timeout
 * says what never happened.
 */
async function waitFor(what, problem, { timeout = 30000, every = 100 } = {}) {
  const started = Date.now();
  for (;;) {
    const wrong = await problem();
    if (!wrong) return;
    if (Date.now() - started > timeout) {
      throw new Error(`${what}: not done in ${timeout / 1000} s, still ${wrong}`);
    }
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

/** `field:value` lines of INFO or CLUSTER INFO as an object. */
function parseInfo(text) {
  const fields = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}

module.exports = { freePorts, waitFor, parseInfo };
