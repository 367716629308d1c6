'use strict';

// npm run pack:local [-- --prebuilt] [-- --out DIR]
//
// Builds this machine's binary and leaves in dist/ the tarballs an operator installs on this
// platform, with no registry and no Rust:
//   rammerhead-session-store-<version>.tgz             the package, whose optional dependency
//                                                      is this platform's package only
//   rammerhead-session-store-<platform>-<version>.tgz  the binary, as napi-rs packages it
//
// On linux-x64-gnu and linux-arm64-gnu the binary is built against glibc 2.17 with zig and
// cargo-zigbuild (`napi build -x`), so it loads on distributions as old as RHEL 7; the build is
// then checked with objdump. Elsewhere it is a plain release build for this machine.
//
// --prebuilt packs the binary already in the package's folder (from `npm install` or
// `npm run build`) instead of building one; --out puts the tarballs elsewhere than dist/.

const fs = require('fs');
const os = require('os');
const path = require('path');
const childProcess = require('child_process');
const { platformArchABI } = require('./platform');
const { glibcRequirements } = require('./check-glibc');
const { ARCHIVE, archive } = require('./native-source');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const GLIBC_FLOOR = '2.17';
const ZIG_BUILDS = {
  'linux-x64-gnu': 'x86_64-unknown-linux-gnu',
  'linux-arm64-gnu': 'aarch64-unknown-linux-gnu',
};

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

function build(platform) {
  const triple = ZIG_BUILDS[platform];
  if (!triple) {
    console.log(`pack:local: building the ${platform} binary for this machine`);
    napi(['build', '--platform', '--release']);
    return;
  }
  const missing = [];
  if (!zigAvailable()) missing.push('zig');
  if (!onPath('cargo-zigbuild')) missing.push('cargo-zigbuild');
  if (missing.length > 0) {
    fail(
      [
        `the ${platform} binary is built against glibc ${GLIBC_FLOOR} with zig and cargo-zigbuild,`,
        `so that it loads on older distributions too; ${missing.join(' and ')} not found.`,
        'Both come from the package registries:',
        '  pip install ziglang                   # zig, which cargo-zigbuild runs as python3 -m ziglang',
        '  cargo install cargo-zigbuild --locked',
        'or pack the binary already built here, which needs this machine’s glibc or newer:',
        '  npm run pack:local -- --prebuilt',
      ].join('\n'),
    );
  }
  console.log(`pack:local: building the ${platform} binary against glibc ${GLIBC_FLOOR} with zig`);
  napi(['build', '--platform', '--release', '-x', '--target', `${triple}.${GLIBC_FLOOR}`]);
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

function main(argv) {
  const prebuilt = argv.includes('--prebuilt');
  const outIndex = argv.indexOf('--out');
  const outDir = path.resolve(outIndex >= 0 ? argv[outIndex + 1] : path.join(root, 'dist'));
  const platform = platformArchABI();
  const platformDir = path.join(root, 'npm', platform);
  const binaryName = `${pkg.napi.binaryName}.${platform}.node`;
  const binary = path.join(root, binaryName);

  if (!fs.existsSync(path.join(platformDir, 'package.json'))) {
    fail(
      `no platform package for ${platform} in npm/: add its target to napi.targets in ` +
        'package.json and run npx napi create-npm-dirs',
    );
  }
  if (!prebuilt) build(platform);
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

main(process.argv.slice(2));
