'use strict';

// This machine's platform as napi-rs names it (`linux-x64-gnu`, `darwin-arm64`,
// `win32-x64-msvc`…), the same name the generated index.js looks for, in a file name
// (`rammerhead-session-store.<platform>.node`) and a package name
// (`rammerhead-session-store-<platform>`).

const fs = require('fs');
const childProcess = require('child_process');

// Decided as the generated index.js decides it, so a binary built under this name is the one
// the loader looks for.
function isMusl() {
  if (process.platform !== 'linux') return false;
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    // no ldd script to read
  }
  if (process.report && typeof process.report.getReport === 'function') {
    process.report.excludeNetwork = true;
    const report = process.report.getReport();
    if (report && report.header && report.header.glibcVersionRuntime) return false;
    if (report && Array.isArray(report.sharedObjects)) {
      return report.sharedObjects.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'));
    }
  }
  try {
    return childProcess.execSync('ldd --version', { encoding: 'utf8' }).includes('musl');
  } catch {
    return false;
  }
}

function isWindowsGnu() {
  const variables = (process.config && process.config.variables) || {};
  return variables.shlib_suffix === 'dll.a' || variables.node_target_type === 'shared_library';
}

function platformArchABI() {
  const { platform, arch } = process;
  switch (platform) {
    case 'linux': {
      const musl = isMusl();
      if (arch === 'arm') return musl ? 'linux-arm-musleabihf' : 'linux-arm-gnueabihf';
      if (arch === 'ppc64' || arch === 's390x') return `linux-${arch}-gnu`;
      return `linux-${arch}-${musl ? 'musl' : 'gnu'}`;
    }
    case 'win32':
      return `win32-${arch}-${arch === 'x64' && isWindowsGnu() ? 'gnu' : 'msvc'}`;
    case 'android':
      return arch === 'arm' ? 'android-arm-eabi' : `android-${arch}`;
    default:
      return `${platform}-${arch}`;
  }
}

// For messages: `linux-x64-gnu (linux, x64, glibc)`.
function describePlatform(id = platformArchABI()) {
  const parts = [process.platform, process.arch];
  if (process.platform === 'linux') parts.push(isMusl() ? 'musl' : 'glibc');
  return `${id} (${parts.join(', ')})`;
}

module.exports = { isMusl, platformArchABI, describePlatform };
