'use strict';

// holdResponse: a response held until a promise settles sends exactly what it would have sent,
// in order, and a piped body waits for it; one that is not held is left untouched.

const http = require('http');
const { Readable } = require('stream');
const { holdResponse } = require('../lib/api/response-gate');
const h = require('./helpers');

let server;
let base;
let handle;

beforeAll(async () => {
  server = http.createServer((req, res) => handle(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

/** A promise and its resolve function. */
function gate() {
  let open;
  const opened = new Promise((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

test('calls made while held are made in order once the wait ends', async () => {
  const { opened, open } = gate();
  const events = [];
  handle = (req, res) => {
    holdResponse(res, () => {
      events.push('decided');
      return opened;
    });
    res.writeHead(201, { 'x-test': 'yes' });
    expect(res.write('one ')).toBe(false);
    res.end('two', () => events.push('ended'));
    expect(res.headersSent).toBe(false);
    events.push('queued');
    setImmediate(() => {
      events.push('opened');
      open();
    });
  };
  const answer = await h.fetchText(base);
  expect(answer).toEqual({ status: 201, body: 'one two' });
  expect(events).toEqual(['decided', 'queued', 'opened', 'ended']);
});

test('a body piped into a held response waits for it, then flows whole', async () => {
  const { opened, open } = gate();
  const chunks = Array.from({ length: 200 }, (_, i) => `${i}:${'x'.repeat(1000)}\n`);
  handle = (req, res) => {
    holdResponse(res, () => opened);
    res.writeHead(200);
    Readable.from(chunks).pipe(res);
    setImmediate(open);
  };
  const answer = await h.fetchText(base);
  expect(answer.body).toBe(chunks.join(''));
});

test('a response with nothing to wait for keeps its own methods and is sent at once', async () => {
  let own;
  handle = (req, res) => {
    // As rammerhead replaces writeHead on each response before its pipeline runs.
    own = function writeHead(...args) {
      return http.ServerResponse.prototype.writeHead.apply(this, args);
    };
    res.writeHead = own;
    let asked = 0;
    holdResponse(res, () => {
      asked++;
      return undefined;
    });
    res.writeHead(200);
    expect(res.headersSent).toBe(true);
    expect(res.writeHead).toBe(own);
    expect(res.end).toBe(http.ServerResponse.prototype.end);
    res.end(`asked ${asked}`);
  };
  expect(await h.fetchText(base)).toEqual({ status: 200, body: 'asked 1' });
});

test('a wait that fails releases the response as well', async () => {
  handle = (req, res) => {
    holdResponse(res, () => Promise.reject(new Error('no answer')));
    res.end('sent anyway');
  };
  expect((await h.fetchText(base)).body).toBe('sent anyway');
});

test('wrappers other code adds afterwards stay, and calls made through them after the wait pass on', async () => {
  for (const wait of [true, false]) {
    handle = (req, res) => {
      holdResponse(res, () => (wait ? new Promise(setImmediate) : undefined));
      // As a later step that rewrites what is sent, keeping the method it wraps.
      const write = res.write;
      const end = res.end;
      res.write = (chunk) => write.call(res, String(chunk).toUpperCase());
      res.end = (chunk) => end.call(res, String(chunk).toUpperCase());
      res.write('one ');
      setImmediate(() => setImmediate(() => res.end('two')));
    };
    expect((await h.fetchText(base)).body).toBe('ONE TWO');
  }
});
