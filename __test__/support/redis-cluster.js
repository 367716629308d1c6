'use strict';

// A real Redis Cluster for the tests: masters and replicas on free loopback ports, each a
// RedisServer with a directory of its own, joined with `redis-cli --cluster create`.
const { execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { freePorts, waitFor, parseInfo } = require('./redis-polling');
const { RedisServer, makeCertificates } = require('../redis-server');

const SLOTS = 16384;

/** CLUSTER NODES as [{ id, port, flags: [...], masterId, connected, slots: [[from, to]] }]. */
function parseNodes(text) {
  return text
    .split(/\r?\n/)
    .filter((line) => line.trim())
    .map((line) => {
      const [id, address, flags, masterId, , , , link, ...slots] = line.trim().split(' ');
      return {
        id,
        port: Number(address.split('@')[0].split(':').pop()),
        flags: flags.split(','),
        masterId,
        connected: link === 'connected',
        slots: slots
          // `[slot->-id]` and `[slot-<-id]` are slots being moved, not owned.
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [from, to = from] = range.split('-').map(Number);
            return [from, to];
          }),
      };
    });
}

function isMaster(node) {
  return node.flags.includes('master') && !node.flags.includes('fail');
}

function slotCount(slots) {
  return slots.reduce((sum, [from, to]) => sum + to - from + 1, 0);
}

function running(server) {
  return server.child !== null && server.child.exitCode === null;
}

class RedisCluster {
  /**
   * Starts `masters * (1 + replicasPerMaster)` nodes and makes a cluster of them; resolves once
   * every node sees every slot served, every node known and every replica in sync.
   */
  static async start({ masters = 3, replicasPerMaster = 1, tls = false } = {}) {
    const cluster = new RedisCluster();
    try {
      await cluster._start(masters, replicasPerMaster, tls);
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  constructor() {
    /** Every node, killed ones included, as RedisServer objects. */
    this.nodes = [];
    /** With TLS: the directory of the authority every node's certificate is signed by. */
    this.certificatesDir = null;
  }

  /** With TLS, the PEM certificate of the nodes' authority (the store's `tlsCa`). */
  get ca() {
    return this.nodes[0] && this.nodes[0].ca;
  }

  async _start(masters, replicasPerMaster, tls) {
    const count = masters * (1 + replicasPerMaster);
    let certificates = false;
    if (tls) {
      this.certificatesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-cluster-tls-'));
      certificates = makeCertificates(this.certificatesDir);
    }
    // The cluster bus listens on its own port, by default the data port + 10000: that is past
    // 65535 for many ports the system hands out, so every node gets a free one of its own.
    const ports = await freePorts(count * 2);
    for (let i = 0; i < count; i++) {
      const server = new RedisServer(ports[i], {
        tls: certificates,
        args: [
          // Nodes and replicas talk to each other over TLS too.
          ...(tls ? ['--tls-cluster', 'yes', '--tls-replication', 'yes'] : []),
          ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
          ...['--cluster-port', String(ports[count + i])],
          // A node not heard from in 1 s is failing: failover in about 2 s, not 15.
          ...['--cluster-node-timeout', '1000'],
          // Otherwise a replica whose link was down a while (as when its master was just
          // killed) may refuse to take over, and the slots stay unserved.
          ...['--cluster-replica-validity-factor', '0'],
          // A master waits 5 s by default for more replicas before it starts a full sync.
          ...['--repl-diskless-sync-delay', '0'],
          // Relative to --dir, which comes first on the command line.
          ...['--logfile', 'redis.log'],
        ],
      });
      this.nodes.push(server);
    }
    await Promise.all(this.nodes.map((server) => server.restart()));
    await new Promise((resolve, reject) => {
      execFile(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...this.nodes.map((server) => `127.0.0.1:${server.port}`),
          ...['--cluster-replicas', String(replicasPerMaster), '--cluster-yes'],
          ...(tls ? ['--tls', '--cacert', certificates.ca] : []),
        ],
        { timeout: 30000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error)
            reject(new Error(`redis-cli --cluster create failed: ${error}\n${stdout}${stderr}`));
          else resolve();
        },
      );
    });
    await waitFor('cluster start', () => this._problem(count, masters));
  }

  /** What keeps the cluster from being ready, as every live node sees it; nothing when ready. */
  _problem(count, masters) {
    for (const server of this.nodes.filter(running)) {
      const info = parseInfo(server.cli('CLUSTER', 'INFO'));
      if (info.cluster_state !== 'ok') return `${server.port}: cluster_state ${info.cluster_state}`;
      if (Number(info.cluster_slots_assigned) !== SLOTS) {
        return `${server.port}: ${info.cluster_slots_assigned} slots assigned`;
      }
      if (Number(info.cluster_known_nodes) !== count) {
        return `${server.port}: knows ${info.cluster_known_nodes} of ${count} nodes`;
      }
      const nodes = parseNodes(server.cli('CLUSTER', 'NODES'));
      const served = nodes.filter((node) => isMaster(node) && node.slots.length > 0);
      if (served.length !== masters) {
        return `${server.port}: sees ${served.length} of ${masters} masters with slots`;
      }
      const odd = nodes.find(
        (node) => !node.connected || node.flags.some((flag) => /fail|handshake|noaddr/.test(flag)),
      );
      if (odd) return `${server.port}: sees ${odd.port} as ${odd.flags}`;
      const replication = parseInfo(server.cli('INFO', 'replication'));
      if (replication.role === 'slave' && replication.master_link_status !== 'up') {
        return `${server.port}: replica link ${replication.master_link_status}`;
      }
    }
    return null;
  }

  /** `redis+cluster://` with every node, killed ones included, as seeds. */
  get url() {
    return this.seedUrl(this.nodes.map((server) => server.port));
  }

  /** `redis+cluster://` with the given nodes (ports or RedisServer objects) as seeds. */
  seedUrl(ports) {
    const hosts = ports.map((port) => `127.0.0.1:${typeof port === 'number' ? port : port.port}`);
    return `${this.certificatesDir ? 'rediss' : 'redis'}+cluster://${hosts.join(',')}`;
  }

  /** CLUSTER NODES of a live node, `except` one, parsed. */
  _view(except) {
    const live = this.nodes.filter((server) => server !== except && running(server));
    for (const server of live) {
      const text = server.cli('CLUSTER', 'NODES');
      if (text) return parseNodes(text);
    }
    throw new Error('no live cluster node answers CLUSTER NODES');
  }

  _server(port) {
    return this.nodes.find((server) => server.port === port);
  }

  /**
   * The masters serving slots now, as a live node sees them, ordered by their first slot:
   * [{ server, id, slots: [[from, to], ...] }].
   */
  async masters() {
    return this._view()
      .filter((node) => isMaster(node) && node.slots.length > 0)
      .map((node) => ({ server: this._server(node.port), id: node.id, slots: node.slots }))
      .sort((a, b) => a.slots[0][0] - b.slots[0][0]);
  }

  /**
   * Kills a master with SIGKILL; resolves, once every live node sees its slots served by the
   * replica that took over and the cluster as ok, with that replica's RedisServer.
   */
  async killMaster(server) {
    const old = this._view(server).find((node) => node.port === server.port);
    if (!old || !isMaster(old) || old.slots.length === 0) {
      throw new Error(`${server.port} is not a master serving slots`);
    }
    await server.stop();
    let promoted = null;
    await waitFor(`failover of ${server.port}`, () => {
      const owners = new Set();
      for (const live of this.nodes.filter(running)) {
        const info = parseInfo(live.cli('CLUSTER', 'INFO'));
        if (info.cluster_state !== 'ok') return `${live.port}: cluster_state ${info.cluster_state}`;
        const owner = parseNodes(live.cli('CLUSTER', 'NODES')).find(
          (node) =>
            isMaster(node) &&
            node.id !== old.id &&
            node.slots.some(([from, to]) => from <= old.slots[0][0] && old.slots[0][0] <= to),
        );
        if (!owner) return `${live.port}: no master serves slot ${old.slots[0][0]}`;
        owners.add(owner.port);
      }
      if (owners.size !== 1) return `nodes disagree on the new master: ${[...owners]}`;
      promoted = this._server([...owners][0]);
      return null;
    });
    return promoted;
  }

  /**
   * Keys on each master serving slots now: [{ port, count }]. With a pattern, the keys that
   * match it (KEYS, inside a script so that only the count crosses over).
   */
  async keysPerMaster(pattern = '*') {
    return (await this.masters()).map(({ server }) => ({
      port: server.port,
      count: Number(
        pattern === '*'
          ? server.cli('DBSIZE')
          : server.cli('EVAL', "return #redis.call('KEYS', ARGV[1])", '0', pattern),
      ),
    }));
  }

  /** Kills every node and deletes their directories. */
  async close() {
    await Promise.all(this.nodes.map((server) => server.close()));
    if (this.certificatesDir) fs.rmSync(this.certificatesDir, { recursive: true, force: true });
  }
}

module.exports = { RedisCluster };
