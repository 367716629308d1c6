'use strict';

// A testcafe-hammerhead proxy with the request pipelines rammerhead's RammerheadProxy has
// (rammerhead itself is not on the npm registry): handlers added with addToOnRequestPipeline or
// addToOnUpgradePipeline are awaited in turn before hammerhead handles the request, and one
// that returns true ends it. As in rammerhead, a handler added without `beginning` goes first,
// and handlers are told whether one of the proxy's own routes (`GET`, `POST`) answers the request.

const stream = require('stream');
const { Proxy } = require('testcafe-hammerhead');

class PipelineProxy extends Proxy {
  constructor(...args) {
    super(...args);
    this.onRequestPipeline = [];
    this.onUpgradePipeline = [];
  }

  addToOnRequestPipeline(handler, beginning = false) {
    if (beginning) this.onRequestPipeline.push(handler);
    else this.onRequestPipeline.unshift(handler);
  }

  addToOnUpgradePipeline(handler, beginning = false) {
    if (beginning) this.onUpgradePipeline.push(handler);
    else this.onUpgradePipeline.unshift(handler);
  }

  isRoute(req) {
    const path = (req.url || '').replace(/[?#].*/, '');
    return this.routes.has(`${req.method} ${path}`);
  }

  async _onRequest(req, res, serverInfo) {
    const isWebsocket = res instanceof stream.Duplex;
    const isRoute = this.isRoute(req);
    for (const handler of this.onRequestPipeline) {
      if ((await handler.call(this, req, res, serverInfo, isRoute, isWebsocket)) === true) return;
    }
    super._onRequest(req, res, serverInfo);
  }

  async _onUpgradeRequest(req, socket, head, serverInfo) {
    for (const handler of this.onUpgradePipeline) {
      if ((await handler.call(this, req, socket, head, serverInfo, this.isRoute(req))) === true) {
        return;
      }
    }
    super._onUpgradeRequest(req, socket, head, serverInfo);
  }
}

module.exports = { PipelineProxy };
