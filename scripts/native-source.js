// @ts-check
'use strict';

// The Rust sources a package carries for building its binary where no prebuilt one loads. They
// travel as one compressed archive, native-source.tar.gz: as loose files they would take half
// of what the package adds to a deployment on disk. `npm pack` (prepack) and `pack:local` make
// it; scripts/install.js unpacks it into a temporary folder before it runs cargo.
//
// Run as a script, writes the archive beside package.json.

const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');

const ARCHIVE = 'native-source.tar.gz';
/** What `cargo build --locked` of the binary needs, relative to the package's folder. */
const SOURCES = [
  'Cargo.toml',
  'Cargo.lock',
  'build.rs',
  'src',
  'crates/core/Cargo.toml',
  'crates/core/src',
];

/**
 * Runs tar on `archivePath` from the archive's own folder, naming it without a folder: GNU tar
 * (first on some Windows paths) takes `C:\…` for a remote host.
 */
function tar(mode, archivePath, args) {
  const result = childProcess.spawnSync('tar', [mode, path.basename(archivePath), ...args], {
    cwd: path.dirname(archivePath),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (result.error && result.error.code === 'ENOENT') {
    throw new Error('tar is not on PATH; it packs and unpacks the Rust sources of the package');
  }
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`tar ${mode} failed: ${String(result.stderr).trim()}`);
  }
}

/** Writes the archive of `root`'s sources to `destination`. */
function archive(root, destination) {
  for (const source of SOURCES) {
    if (!fs.existsSync(path.join(root, source))) throw new Error(`${source} is missing`);
  }
  // The core's integration tests stay out: building the library does not read them.
  tar('-czf', destination, ['-C', root, ...SOURCES]);
}

/** Unpacks `archivePath` into `dir`. */
function extract(archivePath, dir) {
  tar('-xzf', archivePath, ['-C', dir]);
}

module.exports = { ARCHIVE, SOURCES, archive, extract };

if (require.main === module) {
  const root = path.join(__dirname, '..');
  archive(root, path.join(root, ARCHIVE));
}
