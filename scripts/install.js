'use strict';

// The package's `install` step. When a prebuilt binary loads (the platform package
// `rammerhead-session-store-<platform>` that npm installed as an optional dependency, or a
// binary already built in this folder), it does nothing. Otherwise it builds the binary from
// source with cargo, or, without cargo, fails saying which platform has no binary and that Rust
// is needed to build one.

const fs = require('fs');
const os = require('os');
const path = require('path');
const childProcess = require('child_process');
const { ARCHIVE, extract } = require('./native-source');
const { platformArchABI, describePlatform } = require('./platform');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const RUSTUP = 'https://rustup.rs';

function bindingLoadError() {
  try {
    require('../index.js');
    return null;
  } catch (error) {
    return error;
  }
}

// Why the platform package's binary did not load, from the loader's chain of errors (index.js
// links them through `cause`): the first line of each error about that binary, leaving out the
// loader's other attempts (a binary in this folder, WebAssembly builds).
function loadErrorMessages(error, platform) {
  const messages = [];
  for (let e = error; e && messages.length < 20; e = e.cause) {
    const line = String(e.message || '').split('\n')[0];
    if (line.includes(platform) && !line.startsWith("Cannot find module './")) messages.push(line);
  }
  return messages.length > 0 ? messages : [String(error && error.message).split('\n')[0]];
}

function findOnPath(command) {
  const extensions =
    process.platform === 'win32' ? (process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of extensions) {
      const candidate = path.join(dir, command + ext);
      try {
        if (fs.statSync(candidate).isFile()) {
          fs.accessSync(candidate, fs.constants.X_OK);
          return candidate;
        }
      } catch {
        // not here
      }
    }
  }
  return null;
}

// The platforms this version ships prebuilt binaries for: its optional dependencies, which
// `napi prepublish` (and `npm run pack:local`) write into the published package.json.
function prebuiltPlatforms() {
  const prefix = `${pkg.name}-`;
  return Object.keys(pkg.optionalDependencies || {})
    .filter((name) => name.startsWith(prefix))
    .map((name) => name.slice(prefix.length));
}

function isInstalled(packageName) {
  try {
    require.resolve(`${packageName}/package.json`, { paths: [root] });
    return true;
  } catch {
    return false;
  }
}

function cdylibName() {
  const crate = 'rammerhead_session_store';
  if (process.platform === 'win32') return `${crate}.dll`;
  if (process.platform === 'darwin') return `lib${crate}.dylib`;
  return `lib${crate}.so`;
}

// Builds with cargo and puts the library where index.js looks first. A checkout builds in
// place, in target/ as usual. An installed package (inside node_modules) unpacks the sources it
// carries (scripts/native-source.js) and builds in a temporary directory that it removes
// afterwards, so cargo's output does not stay in the deployment.
function buildFromSource(cargo, platform) {
  const packed = !fs.existsSync(path.join(root, 'Cargo.toml'));
  const insideNodeModules = root.split(path.sep).includes('node_modules');
  let targetDir = process.env.CARGO_TARGET_DIR;
  const temporary =
    packed || (!targetDir && insideNodeModules)
      ? fs.mkdtempSync(path.join(os.tmpdir(), 'rammerhead-session-store-build-'))
      : null;
  const sources = packed ? path.join(temporary, 'source') : root;
  if (!targetDir)
    targetDir = temporary ? path.join(temporary, 'target') : path.join(root, 'target');
  console.error(
    `rammerhead-session-store: no prebuilt binary loads for ${describePlatform(platform)}; ` +
      'building it from source with cargo (a minute or two)…',
  );
  try {
    if (packed) {
      fs.mkdirSync(sources);
      extract(path.join(root, ARCHIVE), sources);
    }
    const result = childProcess.spawnSync(
      cargo,
      ['build', '--release', '--lib', '--locked', '--target-dir', targetDir],
      { cwd: sources, stdio: 'inherit' },
    );
    if (result.error) throw result.error;
    if (result.status !== 0) {
      throw new Error(`cargo build exited with ${result.status ?? result.signal}`);
    }
    const built = path.join(targetDir, 'release', cdylibName());
    const destination = path.join(root, `${pkg.napi.binaryName}.${platform}.node`);
    // A new file renamed into place: a process that has the old binary loaded keeps it intact.
    const staging = `${destination}.${process.pid}.tmp`;
    fs.copyFileSync(built, staging);
    fs.renameSync(staging, destination);
  } finally {
    if (temporary) fs.rmSync(temporary, { recursive: true, force: true });
  }
  // Loaded in a new process, as a program using the package would.
  const check = childProcess.spawnSync(process.execPath, ['-e', 'require(process.argv[1])', root], {
    stdio: 'inherit',
  });
  if (check.status !== 0) throw new Error('the binary built from source does not load');
}

function noBinaryMessage(platform, loadError) {
  const described = describePlatform(platform);
  const platformPackage = `${pkg.name}-${platform}`;
  const prebuilt = prebuiltPlatforms();
  const lines = [];
  if (prebuilt.includes(platform) && !isInstalled(platformPackage)) {
    lines.push(
      `rammerhead-session-store: no prebuilt binary for this platform, ${described}, is installed.`,
      `It comes in the package ${platformPackage}, an optional dependency, which is missing:`,
      'npm skips it when optional dependencies are omitted (--omit=optional, --no-optional), and',
      'from local tarballs both must be installed together:',
      `  npm install ./${pkg.name}-${pkg.version}.tgz ./${platformPackage}-${pkg.version}.tgz`,
    );
  } else if (prebuilt.includes(platform)) {
    lines.push(
      `rammerhead-session-store: the prebuilt binary for ${described} is installed but does not load:`,
      ...loadErrorMessages(loadError, platform).map((m) => `  ${m}`),
    );
  } else {
    lines.push(
      `rammerhead-session-store: no prebuilt binary exists for this platform, ${described}.`,
      prebuilt.length > 0
        ? `Prebuilt binaries exist for: ${prebuilt.join(', ')}.`
        : 'This copy of the package carries no prebuilt binaries (a checkout builds its own).',
    );
  }
  lines.push(
    'Building one from source needs Rust (cargo), which is not on PATH.',
    `Install Rust from ${RUSTUP} , make sure cargo is on PATH, then run the install again.`,
  );
  return lines.join('\n');
}

function main() {
  const loadError = bindingLoadError();
  if (!loadError) return 0;
  const platform = platformArchABI();
  const cargo = findOnPath('cargo');
  if (!cargo) {
    console.error(noBinaryMessage(platform, loadError));
    return 1;
  }
  try {
    buildFromSource(cargo, platform);
    return 0;
  } catch (error) {
    console.error(
      `rammerhead-session-store: building the binary for ${describePlatform(platform)} from ` +
        `source failed: ${error.message}. cargo's output is above. Building needs a working ` +
        `Rust toolchain (${RUSTUP}) and access to crates.io.`,
    );
    return 1;
  }
}

process.exitCode = main();
