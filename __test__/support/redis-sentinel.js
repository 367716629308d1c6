'use strict';

// A real Redis Sentinel setup for the tests: a master, one replica and Sentinel processes on
// free loopback ports, each with a directory of its own.
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { freePorts, waitFor, parseInfo } = require('./redis-polling');
const { RedisServer, kill } = require('../redis-server');

/**
 * SENTINEL replicas / sentinels as redis-cli prints them, one field name or value a line, as
 * [{ name, ip, port, flags, ... }]: each entry starts with its `name` field.
 */
function parseEntries(text) {
  const lines = text.split(/\r?\n/);
  const entries = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (lines[i] === 'name') entries.push({});
    if (entries.length) entries[entries.length - 1][lines[i]] = lines[i + 1];
  }
  return entries;
}

function running(instance) {
  return instance.child !== null && instance.child.exitCode === null;
}

/** One Sentinel process with its config file, which it rewrites, in a directory of its own. */
class Sentinel {
  constructor(port, config) {
    this.port = port;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-sentinel-'));
    this.config = path.join(this.dir, 'sentinel.conf');
    this.log = path.join(this.dir, 'sentinel.log');
    fs.writeFileSync(
      this.config,
      [`port ${port}`, 'bind 127.0.0.1', `dir ${this.dir}`, `logfile ${this.log}`, ...config]
        .map((line) => `${line}\n`)
        .join(''),
    );
    this.child = null;
  }

  /** Starts the Sentinel (again, after stop()), resolving once it answers. */
  async restart() {
    await this.stop();
    const child = spawn('redis-server', [this.config, '--sentinel'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // A bad config is reported on stderr, before the log file is opened.
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => (stderr = (stderr + text).slice(-2000)));
    let failure = null;
    child.once('error', (error) => {
      failure = new Error(`cannot start redis-server --sentinel (${error.code})`);
    });
    this.child = child;
    await waitFor(
      `sentinel on ${this.port}`,
      () => {
        if (failure) throw failure;
        if (child.exitCode !== null) {
          throw new Error(
            `redis-server --sentinel exited with ${child.exitCode}: ${stderr}${this.tail()}`,
          );
        }
        return this.cli('PING') === 'PONG' ? null : 'no PONG';
      },
      { timeout: 10000, every: 20 },
    );
  }

  async stop() {
    const { child } = this;
    this.child = null;
    await kill(child);
  }

  cli(...args) {
    const result = spawnSync('redis-cli', ['-p', String(this.port), ...args], {
      encoding: 'utf8',
    });
    if (result.error) throw result.error;
    return result.stdout.trim();
  }

  /** The end of its log, for errors. */
  tail() {
    try {
      return fs.readFileSync(this.log, 'utf8').split('\n').slice(-10).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async close() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

class RedisSentinelGroup {
  /**
   * Starts a master, a replica of it and `sentinels` Sentinels watching them as `masterName`;
   * resolves once every Sentinel knows the master, the replica and the other Sentinels.
   * With `password`, the data servers ask for it (the Sentinels do not).
   */
  static async start({ masterName = 'mymaster', sentinels = 3, password } = {}) {
    const group = new RedisSentinelGroup(masterName, password);
    try {
      await group._start(sentinels);
    } catch (error) {
      await group.close();
      throw error;
    }
    return group;
  }

  constructor(masterName, password) {
    this.masterName = masterName;
    this.password = password;
    /** The server the Sentinels name as master, and the other one. */
    this.master = null;
    this.replica = null;
    /** The server killMaster() last killed, until restartOld() brings it back. */
    this.killed = null;
    this.sentinels = [];
  }

  async _start(count) {
    const name = this.masterName;
    const { password } = this;
    const [masterPort, replicaPort, ...sentinelPorts] = await freePorts(2 + count);
    const args = [
      // On both: after a failover, the old master syncs from the new one.
      ...(password ? ['--masterauth', password] : []),
      // A master waits 5 s by default for more replicas before it starts a full sync.
      ...['--repl-diskless-sync-delay', '0'],
      // Relative to --dir, which comes first on the command line.
      ...['--logfile', 'redis.log'],
    ];
    this.master = new RedisServer(masterPort, { password, args });
    this.replica = new RedisServer(replicaPort, {
      password,
      args: [...args, '--replicaof', '127.0.0.1', String(masterPort)],
    });
    const config = [
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${Math.min(2, count)}`,
      // Down after 1 s without an answer: a failover takes seconds, not half a minute.
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      ...(password ? [`sentinel auth-pass ${name} ${password}`] : []),
    ];
    this.sentinels = sentinelPorts.map((port) => new Sentinel(port, config));
    await this.master.restart();
    await this.replica.restart();
    await Promise.all(this.sentinels.map((sentinel) => sentinel.restart()));
    await waitFor('sentinel start', () => {
      const link = this._replicaProblem(this.replica, this.master);
      if (link) return link;
      for (const sentinel of this.sentinels) {
        const address = sentinel.cli('SENTINEL', 'get-master-addr-by-name', name).split(/\s+/);
        if (Number(address[1]) !== masterPort) {
          return `sentinel ${sentinel.port}: master is ${address.join(':') || 'unknown'}`;
        }
        const seen = this._seenAsReplica(sentinel, this.replica);
        if (seen) return seen;
        const others = parseEntries(sentinel.cli('SENTINEL', 'sentinels', name));
        if (others.length !== count - 1) {
          return `sentinel ${sentinel.port}: knows ${others.length} of ${count - 1} sentinels`;
        }
      }
      return null;
    });
  }

  /** What keeps `server` from being a replica of `master` with its link up; nothing if it is. */
  _replicaProblem(server, master) {
    const info = parseInfo(server.cli('INFO', 'replication'));
    if (info.role !== 'slave' || Number(info.master_port) !== master.port) {
      return `${server.port}: role ${info.role} of ${info.master_port}`;
    }
    if (info.master_link_status !== 'up') return `${server.port}: link ${info.master_link_status}`;
    return null;
  }

  /**
   * What keeps a Sentinel from seeing `server` as a healthy replica, one it would promote;
   * nothing if it does.
   */
  _seenAsReplica(sentinel, server) {
    const replicas = parseEntries(sentinel.cli('SENTINEL', 'replicas', this.masterName));
    const entry = replicas.find((replica) => Number(replica.port) === server.port);
    if (!entry || entry.flags !== 'slave' || entry['master-link-status'] !== 'ok') {
      return `sentinel ${sentinel.port}: replica ${server.port} is ${JSON.stringify(entry)}`;
    }
    return null;
  }

  get sentinelPorts() {
    return this.sentinels.map((sentinel) => sentinel.port);
  }

  /** `redis+sentinel://[:password@]host:port,.../masterName`, every Sentinel as a seed. */
  get url() {
    const credentials = this.password ? `:${encodeURIComponent(this.password)}@` : '';
    const hosts = this.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',');
    return `redis+sentinel://${credentials}${hosts}/${this.masterName}`;
  }

  /** The master's port as the first live Sentinel that answers names it. */
  async currentMasterPort() {
    for (const sentinel of this.sentinels.filter(running)) {
      const address = sentinel.cli('SENTINEL', 'get-master-addr-by-name', this.masterName);
      const port = Number(address.split(/\s+/)[1]);
      if (port) return port;
    }
    throw new Error(`no live sentinel names a master for ${this.masterName}`);
  }

  /**
   * Kills the master with SIGKILL; resolves, once every live Sentinel names the replica as
   * master and it says so itself, with the new master's RedisServer.
   */
  async killMaster() {
    const port = await this.currentMasterPort();
    const old = [this.master, this.replica].find((server) => server.port === port);
    const next = old === this.master ? this.replica : this.master;
    if (!running(next)) throw new Error(`no replica to take over: restartOld() first`);
    await old.stop();
    await waitFor(`failover from ${old.port} to ${next.port}`, () => {
      for (const sentinel of this.sentinels.filter(running)) {
        const address = sentinel.cli('SENTINEL', 'get-master-addr-by-name', this.masterName);
        if (Number(address.split(/\s+/)[1]) !== next.port) {
          return `sentinel ${sentinel.port}: master is ${address.split(/\s+/).join(':')}`;
        }
      }
      const role = parseInfo(next.cli('INFO', 'replication')).role;
      return role === 'master' ? null : `${next.port}: role ${role}`;
    });
    this.master = next;
    this.replica = old;
    this.killed = old;
    return next;
  }

  /**
   * Starts the server killMaster() killed again; resolves with it once it is a replica of the
   * new master with its link up. By default it comes back as a master, as a server whose config
   * no one rewrote while it was down, and the Sentinels demote it: that takes about 20 s (they
   * wait 8 s before they do, and see it as a replica at their next INFO of it, every 10 s).
   * With `asReplica`, it starts as a replica of the new master already: about 1 s.
   */
  async restartOld({ asReplica = false } = {}) {
    const old = this.killed;
    if (!old) throw new Error('no master was killed');
    const args = [];
    for (let i = 0; i < old.args.length; i++) {
      if (old.args[i] === '--replicaof') i += 2;
      else args.push(old.args[i]);
    }
    if (asReplica) args.push('--replicaof', '127.0.0.1', String(this.master.port));
    old.args = args;
    await old.restart();
    this.killed = null;
    // Until the Sentinels have seen it back, they would not promote it.
    await waitFor(
      `${old.port} back as a replica`,
      () => {
        const link = this._replicaProblem(old, this.master);
        if (link) return link;
        for (const sentinel of this.sentinels.filter(running)) {
          const seen = this._seenAsReplica(sentinel, old);
          if (seen) return seen;
        }
        return null;
      },
      { timeout: 60000 },
    );
    return old;
  }

  /** Kills every Sentinel and server and deletes their directories. */
  async close() {
    const all = [...this.sentinels, this.master, this.replica].filter(Boolean);
    await Promise.all(all.map((instance) => instance.close()));
  }
}

module.exports = { RedisSentinelGroup };
