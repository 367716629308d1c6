'use strict';

// A TCP relay in front of a Redis server that can hold back its replies, so that a test can
// have a command carried out while its reply never arrives in time:
//   node reply-gate.js REDIS_PORT
// prints the port it listens on, then takes one command per line on stdin, answering "ok":
//   hold     keep every reply from now on
//   release  deliver the replies kept, in order, and stop keeping them
//   release-after MS  the same, MS milliseconds later (while the test's process is blocked)
const net = require('net');
const readline = require('readline');

const redisPort = Number(process.argv[2]);
let holding = false;
const kept = [];

const server = net.createServer((client) => {
  const upstream = net.connect(redisPort, '127.0.0.1');
  client.on('data', (data) => upstream.write(data));
  upstream.on('data', (data) => {
    if (holding) kept.push([client, data]);
    else client.write(data);
  });
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  for (const socket of [client, upstream]) {
    socket.on('error', end);
    socket.on('close', end);
  }
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});

function release() {
  holding = false;
  for (const [client, data] of kept.splice(0)) if (!client.destroyed) client.write(data);
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, ms] = line.split(' ');
  if (command === 'hold') holding = true;
  if (command === 'release') release();
  if (command === 'release-after') setTimeout(release, Number(ms));
  process.stdout.write('ok\n');
});
process.stdin.on('end', () => process.exit(0));
