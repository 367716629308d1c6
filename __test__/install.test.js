'use strict';

// The package as an operator installs it: packed into tarballs by `npm run pack:local`, then
// installed into a new project with no cargo or rustc on PATH and no registry (npm --offline
// with an empty cache), and used there.

const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ARCHIVE, SOURCES } = require('../scripts/native-source');
const { platformArchABI } = require('../scripts/platform');
const pkg = require('../package.json');

const repo = path.join(__dirname, '..');
const platform = platformArchABI();
const platformPackage = `${pkg.name}-${platform}`;
const RUST_TOOLS = ['cargo', 'rustc', 'cargo.exe', 'rustc.exe'];

let work;
let mainTarball;
let platformTarball;

function withoutRust(value) {
  return value
    .split(path.delimiter)
    .filter((dir) => dir && !RUST_TOOLS.some((tool) => fs.existsSync(path.join(dir, tool))))
    .join(path.delimiter);
}

// The environment of an operator's shell: no Rust on PATH, none of the settings that the npm
// running these tests hands its scripts, and an npm cache of its own that starts empty.
function operatorEnv() {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && !/^(CARGO|RUSTC|RUSTUP)/.test(key)) env[key] = value;
  }
  env.PATH = withoutRust(process.env.PATH);
  env.npm_config_cache = path.join(work, 'npm-cache');
  return env;
}

function npm(cwd, args) {
  const result = childProcess.spawnSync('npm', [...args, '--offline', '--no-audit', '--no-fund'], {
    cwd,
    env: operatorEnv(),
    encoding: 'utf8',
    shell: process.platform === 'win32',
  });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

// A project that lets the package run its install step. npm 11 reads `allowScripts` (keyed by
// the tarball's spec for a file dependency) and, with strict-allow-scripts, runs no
// dependency's install script without it; older npm ignores the field.
function newProject(name) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  const allowScripts = { [pkg.name]: true, [`file:${mainTarball}`]: true };
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true, allowScripts }, null, 2),
  );
  return dir;
}

// Bytes on disk, as du counts them.
function diskUsage(target) {
  const stat = fs.lstatSync(target);
  let total = stat.blocks !== undefined ? stat.blocks * 512 : stat.size;
  if (stat.isDirectory()) {
    for (const name of fs.readdirSync(target)) total += diskUsage(path.join(target, name));
  }
  return total;
}

function smoke(project) {
  const result = childProcess.spawnSync(
    process.execPath,
    [path.join(repo, 'scripts', 'smoke.js'), project],
    { cwd: project, env: operatorEnv(), encoding: 'utf8' },
  );
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rammerhead-session-store-install-'));
  const dist = path.join(work, 'dist');
  // The binary that `npm install` or `npm run build` left here, packed as pack:local packs it.
  const pack = childProcess.spawnSync(
    process.execPath,
    [path.join(repo, 'scripts', 'pack-local.js'), '--prebuilt', '--out', dist],
    { cwd: repo, encoding: 'utf8' },
  );
  expect({ status: pack.status, stderr: pack.stderr }).toMatchObject({ status: 0 });
  mainTarball = path.join(dist, `${pkg.name}-${pkg.version}.tgz`);
  platformTarball = path.join(dist, `${platformPackage}-${pkg.version}.tgz`);
  expect(fs.readdirSync(dist).sort()).toEqual(
    [path.basename(mainTarball), path.basename(platformTarball)].sort(),
  );
}, 120000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the operator environment has no cargo or rustc', () => {
  for (const tool of ['cargo', 'rustc']) {
    const result = childProcess.spawnSync(tool, ['--version'], { env: operatorEnv() });
    expect(result.error && result.error.code).toBe('ENOENT');
  }
});

test('both tarballs install without Rust or a registry, as two packages under 5 MB, and a store runs', () => {
  const project = newProject('operator-app');
  const installed = npm(project, ['install', mainTarball, platformTarball]);
  expect(installed).toMatchObject({ status: 0 });
  expect(installed.output).toMatch(/added 2 packages/);

  const lock = JSON.parse(fs.readFileSync(path.join(project, 'package-lock.json'), 'utf8'));
  expect(
    Object.keys(lock.packages)
      .filter((key) => key !== '')
      .sort(),
  ).toEqual([`node_modules/${pkg.name}`, `node_modules/${platformPackage}`].sort());
  expect(diskUsage(path.join(project, 'node_modules'))).toBeLessThan(5 * 1000 * 1000);

  // Nothing was built: no cargo output, no binary beside the JavaScript.
  const installedMain = path.join(project, 'node_modules', pkg.name);
  expect(fs.existsSync(path.join(installedMain, 'target'))).toBe(false);
  expect(fs.readdirSync(installedMain).filter((name) => name.endsWith('.node'))).toEqual([]);

  const result = smoke(project);
  expect(result.ok).toBe(true);
  expect(result.loaded).toEqual([
    fs.realpathSync(
      path.join(
        project,
        'node_modules',
        platformPackage,
        `${pkg.napi.binaryName}.${platform}.node`,
      ),
    ),
  ]);

  // A deployment that reinstalls from its lock file, production dependencies only.
  fs.rmSync(path.join(project, 'node_modules'), { recursive: true });
  const reinstalled = npm(project, ['ci', '--omit=dev']);
  expect(reinstalled).toMatchObject({ status: 0 });
  expect(smoke(project).ok).toBe(true);
});

test('the package carries the Rust sources for a build where no binary loads, in one archive', () => {
  const unpacked = path.join(work, 'unpacked');
  fs.mkdirSync(unpacked);
  const tar = (args, cwd) => {
    const result = childProcess.spawnSync('tar', args, { cwd, encoding: 'utf8' });
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    return result.stdout;
  };
  tar(['-xzf', mainTarball], unpacked);
  const packaged = path.join(unpacked, 'package');
  // Loose sources would take half of what the package adds to a deployment.
  const files = (dir) =>
    fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  expect(files(packaged).filter((e) => /\.rs$|Cargo/.test(e.name))).toEqual([]);
  const listed = tar(['-tzf', path.join(packaged, ARCHIVE)], packaged)
    .split('\n')
    .filter((name) => name && !name.endsWith('/'))
    .sort();
  const expected = SOURCES.flatMap((source) =>
    fs.statSync(path.join(repo, source)).isDirectory()
      ? files(path.join(repo, source)).map((e) =>
          path.relative(repo, path.join(e.parentPath, e.name)).split(path.sep).join('/'),
        )
      : [source],
  ).sort();
  expect(listed).toEqual(expected);
});

test('pack:local names the targets it can pack when given another', () => {
  const run = childProcess.spawnSync(
    process.execPath,
    [path.join(repo, 'scripts', 'pack-local.js'), '--target', 'sparc-sun-solaris'],
    { cwd: repo, encoding: 'utf8' },
  );
  expect(run.status).toBe(1);
  expect(run.stderr).toContain('--target sparc-sun-solaris is not one of napi.targets');
  expect(run.stderr).toContain('aarch64-unknown-linux-gnu');
});

test('the package alone, without its platform package or Rust, fails to install and says why', () => {
  const project = newProject('no-binary-app');
  const installed = npm(project, ['install', mainTarball]);
  expect(installed.status).not.toBe(0);
  expect(installed.output).toContain(`no prebuilt binary for this platform, ${platform}`);
  expect(installed.output).toContain(platformPackage);
  expect(installed.output).toContain('needs Rust');
  expect(installed.output).toContain('https://rustup.rs');
  expect(fs.existsSync(path.join(project, 'node_modules', pkg.name, 'target'))).toBe(false);
});
