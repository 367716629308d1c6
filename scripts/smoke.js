'use strict';

// A store round trip through the package as installed in the project of the current directory
// (or of the folder given, which may also be the package's own folder): requires
// `rammerhead-session-store` from there, saves sessions with
// a RammerheadSessionFileCache, reads them back with a second one, and prints one JSON line
// saying which native binary was loaded. Exit status 0 when every check holds.
//
//   node scripts/smoke.js [project-dir]
//
// The session class is a tiny one with the contract of rammerhead's RammerheadSession, so that
// the project needs nothing but this package.

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const NAME = 'rammerhead-session-store';

class TinySession {
  constructor({ id }) {
    this.id = id;
    const now = Date.now();
    this.data = { createdAt: now, lastUsed: now };
    this.serializedCookieJar = '{"version":"tough-cookie@4.0.0","cookies":[]}';
  }

  get createdAt() {
    return this.data.createdAt;
  }

  get lastUsed() {
    return this.data.lastUsed;
  }

  updateLastUsed() {
    this.data.lastUsed = Math.max(Date.now(), this.data.createdAt + 1);
  }

  serializeSession() {
    return JSON.stringify({ data: this.data, serializedCookieJar: this.serializedCookieJar });
  }

  static DeserializeSession(id, serializedSession) {
    const parsed = JSON.parse(serializedSession);
    const session = new TinySession({ id });
    session.data = parsed.data;
    session.serializedCookieJar = parsed.serializedCookieJar;
    return session;
  }
}

function isThePackage(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name === NAME;
  } catch {
    return false;
  }
}

function main() {
  const project = path.resolve(process.argv[2] || process.cwd());
  const entry = isThePackage(project)
    ? require.resolve(project)
    : require.resolve(NAME, { paths: [project] });
  const { RammerheadSessionFileCache, RammerheadSessionMemoryStore } = require(entry);
  const loaded = Object.keys(require.cache).filter((file) => file.endsWith('.node'));

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rammerhead-session-store-smoke-'));
  try {
    const added = crypto.randomBytes(16).toString('hex');
    const imported = crypto.randomBytes(16).toString('hex');

    const first = new RammerheadSessionFileCache({ saveDirectory: dir, sessionClass: TinySession });
    const session = first.add(added);
    session.data.note = 'kept';
    session.updateLastUsed();
    const source = new TinySession({ id: imported });
    source.data.note = 'imported';
    first.addSerializedSession(imported, source.serializeSession());
    assert.ok(first.has(added) && first.has(imported));
    first.close();

    const files = fs.readdirSync(dir).sort();
    assert.deepStrictEqual(files, [`${added}.rhfsession`, `${imported}.rhfsession`].sort());

    const second = new RammerheadSessionFileCache({
      saveDirectory: dir,
      sessionClass: TinySession,
    });
    assert.strictEqual(second.get(added).data.note, 'kept');
    assert.strictEqual(second.get(imported).data.note, 'imported');
    assert.deepStrictEqual(second.keys().sort(), [added, imported].sort());
    assert.strictEqual(second.delete(imported), true);
    assert.strictEqual(second.has(imported), false);
    second.close();

    const memory = new RammerheadSessionMemoryStore({ sessionClass: TinySession });
    memory.add(added);
    assert.ok(memory.has(added));
    memory.close();

    console.log(JSON.stringify({ ok: true, entry, loaded, files }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
