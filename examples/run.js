#!/usr/bin/env node
/**
 * Runs one example with one command:
 *
 *   npm run example -- echo-server        (or: node examples/run.js echo-server)
 *
 * Compiles examples/ (and the library they import) with tsc into examples/dist (incremental:
 * fast after the first time), then runs the example with node; exits with its exit code.
 */
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { readdirSync } = require('node:fs');
const { join } = require('node:path');

const names = readdirSync(__dirname)
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -'.ts'.length));
const [name, ...args] = process.argv.slice(2);
if (name === undefined || !names.includes(name)) {
  process.stderr.write(`usage: npm run example -- <name> [args]\nexamples: ${names.join(', ')}\n`);
  process.exit(2);
}

try {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(__dirname, 'tsconfig.json')], { stdio: 'pipe' });
} catch (error) {
  process.stderr.write(`examples do not compile:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  process.exit(1);
}

const result = spawnSync(process.execPath, [join(__dirname, 'dist', 'examples', `${name}.js`), ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
