#!/usr/bin/env node
// Stands in for node-gyp when prebuildify runs (`npm run prebuild`): builds with cmake-js (the same build as
// `npm run build:native`, incremental) instead, leaving build/Release/trt_flowers.node for prebuildify to copy.
// prebuildify's node-gyp arguments (rebuild --target ... --devdir ...) are ignored: the addon is Node-API 8.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), 'build-native.js');
const r = spawnSync(process.execPath, [script], { stdio: 'inherit' });
process.exit(r.status ?? 1);
