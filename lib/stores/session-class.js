// @ts-check
'use strict';

const fs = require('fs');
const path = require('path');
const { codedError } = require('../api/errors');

const CLASS_FILE = path.join('src', 'classes', 'RammerheadSession.js');

function isRammerheadRoot(dir) {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    return pkg.name === 'rammerhead' && fs.existsSync(path.join(dir, CLASS_FILE));
  } catch {
    return false;
  }
}

/** An installed `rammerhead` package, seen from the program and from the working directory. */
function installedRoot() {
  const from = [process.cwd()];
  if (require.main && require.main.filename) from.unshift(path.dirname(require.main.filename));
  try {
    const root = path.dirname(require.resolve('rammerhead/package.json', { paths: from }));
    return isRammerheadRoot(root) ? root : undefined;
  } catch {
    return undefined;
  }
}

/** The rammerhead source tree the running program belongs to. */
function enclosingRoot() {
  if (!require.main || !require.main.filename) return undefined;
  for (let dir = path.dirname(require.main.filename); ; dir = path.dirname(dir)) {
    if (isRammerheadRoot(dir)) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

function rammerheadRoot() {
  return installedRoot() || enclosingRoot();
}

/**
 * The session class a store creates and revives sessions with: the explicit option, else
 * rammerhead's own RammerheadSession.
 */
function resolveSessionClass(explicit) {
  if (explicit) return explicit;
  const root = rammerheadRoot();
  if (root) return require(path.join(root, CLASS_FILE));
  throw codedError(
    'rammerhead-session-store cannot find the session class: no `rammerhead` package is ' +
      'installed and the program does not run from a rammerhead source tree. Pass it as ' +
      "an option, for instance new RammerheadSessionFileCache({ sessionClass: require('" +
      "<path to rammerhead>/src/classes/RammerheadSession') })",
    'ERR_NO_SESSION_CLASS',
  );
}

/** Where the original keeps its files: rammerhead's own `sessions` folder, else `./sessions`. */
function defaultSaveDirectory() {
  const root = rammerheadRoot();
  return root ? path.join(root, 'sessions') : path.resolve('sessions');
}

module.exports = { resolveSessionClass, defaultSaveDirectory };
