'use strict';

// Checks with `objdump -T` that no symbol a Linux glibc binary imports needs a glibc newer than
// the one given (default 2.17, the oldest the linux-*-gnu packages claim to load on).
//
//   node scripts/check-glibc.js [--max 2.17] [file.node ...]
//
// Without files it checks the linux-*-gnu binaries in the package's folder. Exit status 0 when
// every file is within the limit, 1 otherwise, 2 when objdump is missing or a file is not there.

const fs = require('fs');
const path = require('path');
const childProcess = require('child_process');

const root = path.join(__dirname, '..');

function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] || 0) - (y[i] || 0);
    if (d !== 0) return d;
  }
  return 0;
}

// { max, over: [{ symbol, version }] } of one file's dynamic symbols.
function glibcRequirements(file, limit) {
  const out = childProcess.execFileSync('objdump', ['-T', file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  let max = null;
  const over = [];
  for (const line of out.split('\n')) {
    const match = /\bGLIBC_(\d+(?:\.\d+)*)\b\)?\s+(\S+)\s*$/.exec(line);
    if (!match) continue;
    const [, version, symbol] = match;
    if (max === null || compareVersions(version, max) > 0) max = version;
    if (compareVersions(version, limit) > 0) over.push({ symbol, version });
  }
  return { max, over };
}

function main(argv) {
  let limit = '2.17';
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max') limit = argv[++i];
    else files.push(argv[i]);
  }
  if (files.length === 0) {
    for (const name of fs.readdirSync(root)) {
      if (/^rammerhead-session-store\.linux-[a-z0-9]+-gnu\.node$/.test(name)) {
        files.push(path.join(root, name));
      }
    }
    if (files.length === 0) {
      console.error(
        'check-glibc: no linux-*-gnu binary here; build one first (npm run pack:local)',
      );
      return 2;
    }
  }
  let failed = false;
  for (const file of files) {
    if (!fs.existsSync(file)) {
      console.error(`check-glibc: ${file} does not exist`);
      return 2;
    }
    let result;
    try {
      result = glibcRequirements(file, limit);
    } catch (error) {
      console.error(`check-glibc: objdump -T ${file} failed: ${error.message}`);
      console.error('objdump comes with binutils (apt-get install binutils).');
      return 2;
    }
    const inside = path.relative(root, file);
    const name = inside && !inside.startsWith('..') && !path.isAbsolute(inside) ? inside : file;
    if (result.over.length === 0) {
      console.log(`${name}: needs glibc ${result.max || '(none)'}, within ${limit}`);
    } else {
      failed = true;
      console.log(`${name}: needs glibc ${result.max}, newer than ${limit}, for:`);
      for (const { symbol, version } of result.over) console.log(`  ${symbol} (GLIBC_${version})`);
    }
  }
  return failed ? 1 : 0;
}

module.exports = { glibcRequirements };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
