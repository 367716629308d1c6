'use strict';

// A real redis-server for the tests: started on a free loopback port with a directory of its
// own, stopped after. A machine without one fails the tests that need it, loudly.
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { freePort } = require('./helpers');

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

class RedisServer {
  /** @param {{ persistence?: boolean }} options with persistence, data survives a restart */
  static async start(options = {}) {
    const server = new RedisServer(await freePort(), options);
    await server.restart();
    return server;
  }

  constructor(port, { persistence = false }) {
    this.port = port;
    this.persistence = persistence;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-redis-'));
    this.url = `redis://127.0.0.1:${port}`;
    this.child = null;
  }

  /** Starts the server (again, after stop()), resolving once it accepts connections. */
  async restart() {
    await this.stop();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir];
    args.push(
      ...(this.persistence ? ['--appendonly', 'yes'] : ['--save', '', '--appendonly', 'no']),
    );
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let failure = null;
    child.once('error', (error) => {
      failure = new Error(
        `cannot start redis-server (${error.code}): install it (apt-get install redis-server)`,
      );
    });
    this.child = child;
    const started = Date.now();
    while (!(await canConnect(this.port))) {
      if (failure) throw failure;
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      if (Date.now() - started > 10000) throw new Error('redis-server did not start in 10 s');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Kills the server at once, as a crash would; with persistence, what it wrote stays. */
  async stop() {
    const { child } = this;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Runs a redis-cli command against the server; returns its output, trimmed. */
  cli(...args) {
    const result = spawnSync('redis-cli', ['-p', String(this.port), ...args], {
      encoding: 'utf8',
    });
    if (result.error) throw result.error;
    return result.stdout.trim();
  }

  async close() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { RedisServer };
