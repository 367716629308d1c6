'use strict';

// npm run pack:local [-- --target TRIPLE] [-- --prebuilt] [-- --out DIR]
//
// Builds a binary and leaves in dist/ the tarballs an operator installs on its platform, with no
// registry and no Rust:
//   rammerhead-session-store-<version>.tgz             the package, whose optional dependency
//                                                      is that platform's package only
//   rammerhead-session-store-<platform>-<version>.tgz  the binary, as napi-rs packages it
//
// Without --target, for this machine. --target names another platform by its Rust triple (one of
// napi.targets in package.json): the Linux ones are cross-built here with zig and cargo-zigbuild,
// the Rust target added with rustup when it is missing. linux-x64-gnu and linux-arm64-gnu
// binaries are built against glibc 2.17, so they load on distributions as old as RHEL 7, and
// checked with objdump; musl ones load the host's musl. Other platforms build only on their own.
//
// --prebuilt packs the binary already in the package's folder (from `npm install`,
// `npm run build` or an earlier pack) instead of building one; --out puts the tarballs elsewhere
// than dist/.

const fs = require('fs');
const os = require('os');
const path = require('path');
const childProcess = require('child_process');
const { parseTriple } = require('@napi-rs/cli');
const { platformArchABI } = require('./platform');
const { glibcRequirements } = require('./check-glibc');
const { ARCHIVE, archive } = require('./native-source');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const GLIBC_FLOOR = '2.17';

function fail(message) {
  console.error(`pack:local: ${message}`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = childProcess.spawnSync(command, args, {
    cwd: root,
    stdio: 'inherit',
    ...options,
  });
  if (result.error) fail(`${command} could not run: ${result.error.message}`);
  if (result.status !== 0) fail(`${[command, ...args].join(' ')} exited with ${result.status}`);
  return result;
}

function onPath(command) {
  const extensions = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  return (process.env.PATH || '').split(path.delimiter).some((dir) =>
    extensions.some((ext) => {
      try {
        return dir !== '' && fs.statSync(path.join(dir, command + ext)).isFile();
      } catch {
        return false;
      }
    }),
  );
}

// cargo-zigbuild runs $ZIG, else `zig` from PATH, else `python3 -m ziglang` (PyPI's ziglang).
function zigAvailable() {
  if (process.env.ZIG || onPath('zig')) return true;
  const probe = childProcess.spawnSync('python3', ['-m', 'ziglang', 'version'], {
    stdio: 'ignore',
  });
  return probe.status === 0;
}

function npm(args, options = {}) {
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.js$/.test(execPath)) {
    return childProcess.execFileSync(process.execPath, [execPath, ...args], options);
  }
  return childProcess.execFileSync('npm', args, {
    shell: process.platform === 'win32',
    ...options,
  });
}

function napi(args) {
  const cliPackage = require.resolve('@napi-rs/cli/package.json', { paths: [root] });
  const cli = path.join(path.dirname(cliPackage), require(cliPackage).bin.napi);
  run(process.execPath, [cli, ...args]);
}

/** The Rust triple of this machine's platform, among napi.targets; undefined if none. */
function hostTriple(platform) {
  return pkg.napi.targets.find((triple) => parseTriple(triple).platformArchABI === platform);
}

/** Adds the Rust target with rustup when it is missing; fails saying how when it cannot. */
function ensureRustTarget(triple) {
  const listed = childProcess.spawnSync('rustup', ['target', 'list', '--installed'], {
    encoding: 'utf8',
  });
  if (listed.error) {
    fail(
      `the Rust standard library for ${triple} is needed, and rustup is not on PATH to add it. ` +
        `With rustup (https://rustup.rs): rustup target add ${triple}`,
    );
  }
  if (listed.stdout.split('\n').includes(triple)) return;
  console.log(`pack:local: adding the Rust target ${triple} with rustup`);
  run('rustup', ['target', 'add', triple]);
}

/**
 * Builds the binary of `target` ({ triple, platformArchABI, platform, abi }): Linux ones with zig
 * (against glibc 2.17 for gnu), others with the plain toolchain, on their own platform only.
 */
function build(target, native) {
  const { triple, platformArchABI: name, platform, abi } = target;
  if (platform !== 'linux') {
    if (!native) fail(`${name} binaries are built on ${platform} itself; this machine cannot`);
    console.log(`pack:local: building the ${name} binary for this machine`);
    napi(['build', '--platform', '--release']);
    return;
  }
  const missing = [];
  if (!zigAvailable()) missing.push('zig');
  if (!onPath('cargo-zigbuild')) missing.push('cargo-zigbuild');
  if (missing.length > 0) {
    fail(
      [
        `the ${name} binary is built with zig and cargo-zigbuild (against glibc ${GLIBC_FLOOR} for`,
        `gnu, so that it loads on older distributions too); ${missing.join(' and ')} not found.`,
        'Both come from the package registries:',
        '  pip install ziglang                   # zig, which cargo-zigbuild runs as python3 -m ziglang',
        '  cargo install cargo-zigbuild --locked',
        ...(native
          ? [
              'or pack the binary already built here, which needs this machine’s glibc or newer:',
              '  npm run pack:local -- --prebuilt',
            ]
          : []),
      ].join('\n'),
    );
  }
  ensureRustTarget(triple);
  const zigTarget = abi === 'gnu' ? `${triple}.${GLIBC_FLOOR}` : triple;
  console.log(
    `pack:local: building the ${name} binary with zig` +
      (abi === 'gnu' ? ` against glibc ${GLIBC_FLOOR}` : ''),
  );
  napi(['build', '--platform', '--release', '-x', '--target', zigTarget]);
}

// A binary built here must need no glibc newer than GLIBC_FLOOR; a prebuilt one is only described.
function checkGlibc(binary, prebuilt) {
  const name = path.basename(binary);
  let requirements;
  try {
    requirements = glibcRequirements(binary, GLIBC_FLOOR);
  } catch (error) {
    const why = `objdump -T could not read ${name} (${error.message.split('\n')[0]})`;
    if (!prebuilt) fail(`${why}; objdump comes with binutils`);
    console.log(`pack:local: ${why}`);
    return;
  }
  const { max, over } = requirements;
  if (over.length === 0) {
    console.log(`pack:local: ${name} needs glibc ${max} (at most ${GLIBC_FLOOR})`);
  } else if (prebuilt) {
    console.log(`pack:local: ${name} needs glibc ${max} or newer (built without zig)`);
  } else {
    fail(
      `${name} needs glibc ${max}, newer than ${GLIBC_FLOOR}, for ` +
        over.map((o) => `${o.symbol}@GLIBC_${o.version}`).join(', '),
    );
  }
}

// Copies `files` (paths relative to `from`) into a new temporary folder.
function stage(from, files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rammerhead-session-store-pack-'));
  for (const file of files) {
    const target = path.join(dir, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(from, file), target);
    fs.chmodSync(target, fs.statSync(path.join(from, file)).mode & 0o777);
  }
  return dir;
}

function pack(dir, outDir) {
  const out = npm(['pack', '--json', '--ignore-scripts', '--pack-destination', outDir], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return path.join(outDir, JSON.parse(out)[0].filename);
}

/** The value of `--name VALUE` or `--name=VALUE`, if given. */
function option(argv, name) {
  const index = argv.indexOf(name);
  if (index >= 0) {
    if (!argv[index + 1]) fail(`${name} needs a value`);
    return argv[index + 1];
  }
  const joined = argv.find((arg) => arg.startsWith(`${name}=`));
  return joined && joined.slice(name.length + 1);
}

/** The target to pack: --target's triple, else this machine's platform. */
function targetOf(argv) {
  const triple = option(argv, '--target');
  if (triple === undefined) {
    const platform = platformArchABI();
    const host = hostTriple(platform);
    return host
      ? { ...parseTriple(host), native: true }
      : { platformArchABI: platform, native: true };
  }
  if (!pkg.napi.targets.includes(triple)) {
    fail(`--target ${triple} is not one of napi.targets: ${pkg.napi.targets.join(', ')}`);
  }
  const target = parseTriple(triple);
  return { ...target, native: target.platformArchABI === platformArchABI() };
}

const USAGE = 'usage: npm run pack:local [-- --target TRIPLE] [-- --prebuilt] [-- --out DIR]';

function main(argv) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target' || argv[i] === '--out') i++;
    else if (argv[i] !== '--prebuilt' && !/^--(target|out)=/.test(argv[i])) {
      fail(`unknown argument ${argv[i]}\n${USAGE}`);
    }
  }
  const prebuilt = argv.includes('--prebuilt');
  const outDir = path.resolve(option(argv, '--out') || path.join(root, 'dist'));
  const target = targetOf(argv);
  const platform = target.platformArchABI;
  const platformDir = path.join(root, 'npm', platform);
  const binaryName = `${pkg.napi.binaryName}.${platform}.node`;
  const binary = path.join(root, binaryName);

  if (!fs.existsSync(path.join(platformDir, 'package.json'))) {
    fail(
      `no platform package for ${platform} in npm/: add its target to napi.targets in ` +
        'package.json and run npx napi create-npm-dirs',
    );
  }
  if (!prebuilt) build(target, target.native);
  if (!fs.existsSync(binary)) {
    fail(`${binaryName} is not there; run npm run build first, or drop --prebuilt`);
  }

  if (platform.startsWith('linux-') && platform.endsWith('-gnu')) checkGlibc(binary, prebuilt);

  fs.mkdirSync(outDir, { recursive: true });
  for (const name of fs.readdirSync(outDir)) {
    if (name.startsWith(`${pkg.name}-`) && name.endsWith('.tgz'))
      fs.rmSync(path.join(outDir, name));
  }

  // The platform package: npm/<platform>/ as committed, plus the binary.
  const platformStage = stage(platformDir, fs.readdirSync(platformDir));
  fs.copyFileSync(binary, path.join(platformStage, binaryName));
  const platformTarball = pack(platformStage, outDir);

  // The main package: the files `npm pack` takes from here, with a package.json whose optional
  // dependency is the platform package just packed (the published one lists every target).
  const listing = JSON.parse(
    npm(['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  );
  const mainStage = stage(
    root,
    listing[0].files.map((f) => f.path).filter((f) => f !== 'package.json' && f !== ARCHIVE),
  );
  archive(root, path.join(mainStage, ARCHIVE));
  const staged = { ...pkg, optionalDependencies: { [`${pkg.name}-${platform}`]: pkg.version } };
  fs.writeFileSync(path.join(mainStage, 'package.json'), `${JSON.stringify(staged, null, 2)}\n`);
  const mainTarball = pack(mainStage, outDir);

  fs.rmSync(platformStage, { recursive: true, force: true });
  fs.rmSync(mainStage, { recursive: true, force: true });

  const shown = (file) => {
    const relative = path.relative(process.cwd(), file);
    return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
  };
  console.log('\npack:local: the tarballs for this platform:');
  for (const file of [mainTarball, platformTarball]) {
    console.log(`  ${shown(file)}  (${(fs.statSync(file).size / 1024).toFixed(0)} KiB)`);
  }
  console.log('Install both into a rammerhead checkout (no registry or Rust needed):');
  console.log(`  npm install ${shown(mainTarball)} ${shown(platformTarball)}`);
}

module.exports = { zigAvailable, onPath };

if (require.main === module) main(process.argv.slice(2));
