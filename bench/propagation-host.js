'use strict';

// The other host of the propagation figures: a Redis store in a process of its own holding one
// session. Reads one JSON command per line and answers each with one JSON line:
// - { "do": "hold", "id" }: loads the session;
// - { "do": "await", "cookie" }: answers true once the held copy sends `cookie` ("k=v"),
//   looking every millisecond, without writing anything here;
// - { "do": "set", "cookie" }, then { "do": "write" }: changes the session here and writes it;
// - { "do": "cookies" }, { "do": "stats" }.
// Run as: node propagation-host.js URL PREFIX
const readline = require('readline');
const { ourRedisStore } = require('./stores');

const SITE = 'http://bench.test/';
const store = ourRedisStore(process.argv[2], process.argv[3]);
let session;

function awaitCookie(cookie) {
  return new Promise((resolve) => {
    const look = () => {
      if (session.cookies.getClientString(SITE).split('; ').includes(cookie)) resolve(true);
      else setTimeout(look, 1);
    };
    look();
  });
}

const commands = {
  hold: ({ id }) => {
    session = store.get(id);
    return Boolean(session);
  },
  await: ({ cookie }) => awaitCookie(cookie),
  set: ({ cookie }) => {
    session.cookies.setByServer(SITE, [cookie]);
    return true;
  },
  write: async () => {
    await store.writeChanges();
    await store.whenWritten();
    return true;
  },
  cookies: () => session.cookies.getClientString(SITE),
  stats: () => store.stats(),
};

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const command = JSON.parse(line);
  const answer = await commands[command.do](command);
  process.stdout.write(`${JSON.stringify(answer)}\n`);
});
