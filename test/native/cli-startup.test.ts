import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers.js';

// The packages a command that only prints (--help, --version) must not load: each costs start-up time (vega and d3
// alone are hundreds of files). Start-up itself is measured by `npm run bench:startup`, not here.
const HEAVY = [
  'sharp',
  'onnxruntime-node',
  'fastify',
  '@fastify/swagger',
  '@fastify/swagger-ui',
  '@fastify/multipart',
  'prom-client',
  'vega',
  'vega-lite',
  'onnx-proto',
  'protobufjs',
  'tar',
];

const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-startup-'));
const hooks = join(dir, 'hooks.mjs');
// Resolve hooks run off the main thread: they print each package a module is resolved from to stderr.
writeFileSync(
  hooks,
  `export async function resolve(specifier, context, next) {
    const r = await next(specifier, context);
    const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(r.url);
    if (m) process.stderr.write('LOADED ' + m[1] + '\\n');
    return r;
  }\n`,
);
const register = join(dir, 'register.mjs');
writeFileSync(
  register,
  `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
);

async function packagesLoaded(args: string[]): Promise<string[]> {
  const { stderr } = await promisify(execFile)(
    process.execPath,
    ['--import', pathToFileURL(register).href, join(repoRoot, 'bin', 'trt-flowers.js'), ...args],
    { cwd: repoRoot },
  );
  return [...new Set([...stderr.matchAll(/^LOADED (\S+)$/gm)].map((m) => m[1]!))].sort();
}

describe('CLI start-up: printing help loads only what it prints', () => {
  it.each([
    '--version',
    '--help',
    'train --help',
    'serve --help',
    'bench --help',
    'robustness --help',
    'data split --help',
  ])('`trt-flowers %s` loads none of the heavy packages', async (line) => {
    const loaded = await packagesLoaded(line.split(' '));
    expect(loaded).toContain('commander');
    expect(loaded.filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it('a command that runs still loads what it needs', async () => {
    const loaded = await packagesLoaded(['doctor', '--json']);
    expect(loaded).toEqual(expect.arrayContaining(['sharp', 'onnxruntime-node']));
  });
});
