'use strict';

// A Redis store in a process of its own, as one rammerhead host holds it. Reads one JSON command
// per line on stdin and answers each with one JSON line, { ok } or { error }:
// - { "do": "setCookie", "id", "cookie" }: the site's response sets `cookie` ("k=v; ...");
// - { "do": "cookies", "id" }: the cookies the session sends to the site, as "k=v; k2=v2";
// - { "do": "add", "id", "json" }, { "do": "delete", "id" }, { "do": "has", "id" };
// - { "do": "write" }: a round of writeChanges(), then whenWritten();
// - { "do": "stats" }, { "do": "close" }.
// Run as: node redis-host.js URL PREFIX
const readline = require('readline');
const { RammerheadSessionRedisStore } = require('../..');
const HammerheadSession = require('../../demo/hammerhead-session');

const SITE = 'http://site.test/';
const store = new RammerheadSessionRedisStore({
  redisUrl: process.argv[2],
  keyPrefix: process.argv[3],
  sessionClass: HammerheadSession,
  staleCleanupOptions: null,
  commandTimeout: 1000,
  connectTimeout: 1000,
  // Rounds run when the parent asks, so that a test decides when changes are written.
  writeInterval: 1000 * 60 * 60,
});

const commands = {
  setCookie({ id, cookie }) {
    const session = store.get(id);
    if (!session) return false;
    session.cookies.setByServer(SITE, [cookie]);
    return true;
  },
  cookies: ({ id }) => {
    const session = store.get(id);
    return session ? session.cookies.getClientString(SITE) : null;
  },
  add: ({ id, json }) => store.addSerializedSession(id, json),
  delete: ({ id }) => store.delete(id),
  has: ({ id }) => store.has(id),
  write: async () => {
    await store.writeChanges();
    await store.whenWritten();
  },
  stats: () => store.stats(),
  close: () => store.close(),
};

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const command = JSON.parse(line);
  let answer;
  try {
    answer = { ok: (await commands[command.do](command)) ?? null };
  } catch (error) {
    answer = { error: { code: error.code, message: error.message } };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (command.do === 'close') process.exit(0);
});
