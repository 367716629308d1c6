'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ROOT = path.join(__dirname, '..');
const DEMO_CLASS = path.join(ROOT, 'demo', 'hammerhead-session');

/** Lays out a rammerhead package at `root`, its session class being the project's own. */
function fakeRammerhead(root) {
  fs.mkdirSync(path.join(root, 'src', 'classes'), { recursive: true });
  fs.mkdirSync(path.join(root, 'sessions'));
  fs.writeFileSync(
    path.join(root, 'package.json'),
    JSON.stringify({ name: 'rammerhead', version: '1.2.64' }),
  );
  fs.writeFileSync(
    path.join(root, 'src', 'classes', 'RammerheadSession.js'),
    `module.exports = require(${JSON.stringify(DEMO_CLASS)});`,
  );
}

/** Runs `main` as the program's main module and returns what it printed. */
function run(main, cwd) {
  fs.mkdirSync(path.dirname(main), { recursive: true });
  fs.writeFileSync(
    main,
    `
    const { RammerheadSessionFileCache, RammerheadSessionMemoryStore } = require(${JSON.stringify(ROOT)});
    try {
      const store = new RammerheadSessionFileCache({ staleCleanupOptions: null });
      const memory = new RammerheadSessionMemoryStore();
      store.add('x');
      console.log(JSON.stringify({ saveDirectory: store.saveDirectory, memory: memory.add('y').id }));
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, message: e.message }));
    }
  `,
  );
  return JSON.parse(execFileSync(process.execPath, [main], { cwd, encoding: 'utf8' }));
}

test('finds the class of the rammerhead source tree the program runs from', () => {
  const root = h.tempDir();
  fakeRammerhead(root);
  const result = run(path.join(root, 'src', 'server', 'index.js'), h.tempDir());
  expect(result).toEqual({ saveDirectory: path.join(root, 'sessions'), memory: 'y' });
  expect(fs.existsSync(path.join(root, 'sessions', 'x.rhfsession'))).toBe(true);
});

test('finds an installed rammerhead package', () => {
  const project = h.tempDir();
  fakeRammerhead(path.join(project, 'node_modules', 'rammerhead'));
  const result = run(path.join(project, 'app.js'), project);
  expect(result.saveDirectory).toBe(path.join(project, 'node_modules', 'rammerhead', 'sessions'));
});

test('without either it says how to pass sessionClass', () => {
  const dir = h.tempDir();
  const result = run(path.join(dir, 'app.js'), dir);
  expect(result.code).toBe('ERR_NO_SESSION_CLASS');
  expect(result.message).toContain('sessionClass');
});
