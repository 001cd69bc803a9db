#!/usr/bin/env node
'use strict';
// Removes dist/ before packing, so a file left by an earlier build (a renamed module) is not shipped.
require('node:fs').rmSync(require('node:path').join(__dirname, '..', 'dist'), { recursive: true, force: true });
