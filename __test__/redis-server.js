'use strict';

// A real redis-server for the tests: started on a free loopback port with a directory of its
// own, stopped after. A machine without one fails the tests that need it, loudly.
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { RedisSessions } = require('../index.js');
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

/** A certificate authority and a certificate it signed for 127.0.0.1, made with openssl. */
function makeCertificates(dir) {
  const openssl = (...args) => {
    const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (result.error || result.status !== 0) {
      throw new Error(`openssl ${args[0]} failed: ${result.error || result.stderr}`);
    }
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...key,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=test authority',
  );
  openssl('req', ...key, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  );
  return {
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, 'server.pem'),
    key: path.join(dir, 'server.key'),
  };
}

/** Kills a server process with SIGKILL, as a crash would; resolves once it has exited. */
async function kill(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

class RedisServer {
  /**
   * @param {{ persistence?: boolean, tls?: boolean | object, password?: string,
   *   args?: string[] }} options with persistence, data survives a restart; with tls, it
   *   speaks only TLS (`rediss://`), with a certificate signed by the authority in `this.ca`
   *   (its own, or the files `makeCertificates` made, given as `tls`); `args`: more arguments
   *   for redis-server (`--cluster-enabled yes`, `--replicaof HOST PORT`)
   */
  static async start(options = {}) {
    const server = new RedisServer(await freePort(), options);
    await server.restart();
    return server;
  }

  constructor(port, { persistence = false, tls = false, password, args = [] }) {
    this.port = port;
    this.args = args;
    this.persistence = persistence;
    this.password = password;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-redis-'));
    // Servers that talk to each other (a cluster) share one authority: `tls` is then its files.
    this.certificates = tls ? (tls === true ? makeCertificates(this.dir) : tls) : null;
    this.ca = tls ? fs.readFileSync(this.certificates.ca, 'latin1') : undefined;
    const credentials = password ? `:${encodeURIComponent(password)}@` : '';
    this.url = `${tls ? 'rediss' : 'redis'}://${credentials}127.0.0.1:${port}`;
    this.child = null;
  }

  /** Starts the server (again, after stop()), resolving once it accepts connections. */
  async restart() {
    await this.stop();
    const args = ['--bind', '127.0.0.1', '--dir', this.dir, ...this._listenArgs()];
    args.push(
      // The server is stopped with SIGKILL: with the default `appendfsync everysec`, Redis may
      // acknowledge a write it has not handed to the file yet (while an fsync is slow).
      ...(this.persistence
        ? ['--appendonly', 'yes', '--appendfsync', 'always']
        : ['--save', '', '--appendonly', 'no']),
      ...this.args,
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
    await kill(child);
  }

  /** Runs a redis-cli command against the server; returns its output, trimmed. */
  cli(...args) {
    const connection = ['-p', String(this.port)];
    if (this.certificates) connection.push('--tls', '--cacert', this.certificates.ca);
    if (this.password) connection.push('--no-auth-warning', '-a', this.password);
    const result = spawnSync('redis-cli', [...connection, ...args], {
      encoding: 'utf8',
    });
    if (result.error) throw result.error;
    return result.stdout.trim();
  }

  _listenArgs() {
    const auth = this.password ? ['--requirepass', this.password] : [];
    const { certificates } = this;
    if (!certificates) return ['--port', String(this.port), ...auth];
    return [
      ...['--port', '0', '--tls-port', String(this.port), '--tls-auth-clients', 'no'],
      ...['--tls-cert-file', certificates.cert, '--tls-key-file', certificates.key],
      // The authority it checks other servers against (its master, the other cluster nodes).
      ...['--tls-ca-cert-file', certificates.ca],
      ...auth,
    ];
  }

  async close() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The key that holds session `id` under `prefix` (it lies in the session's bucket). */
function sessionKey(prefix, id) {
  return RedisSessions.keyOf(prefix, id);
}

/** The key of the index of the bucket that holds session `id` under `prefix`. */
function indexKey(prefix, id) {
  return `${sessionKey(prefix, id).slice(0, -`session:${id}`.length)}index`;
}

module.exports = { RedisServer, makeCertificates, kill, sessionKey, indexKey };
