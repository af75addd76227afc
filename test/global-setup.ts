import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { fixturesDir, repoRoot } from './helpers.js';

/** Makes the tiny TorchScript fixture with the project's own script (never committed). */
export default function setup(): void {
  mkdirSync(fixturesDir, { recursive: true });
  const script = join(repoRoot, 'scripts', 'export_backbone.py');
  const out = join(fixturesDir, 'tiny.pt');
  if (existsSync(out) && statSync(out).mtimeMs > statSync(script).mtimeMs) return;
  const python = process.env.TRT_FLOWERS_PYTHON ?? '/usr/bin/python3';
  execFileSync(python, [script, '--arch', 'tiny', '--num-classes', '5', '--seed', '1', '--out', out], {
    stdio: 'inherit',
  });
}
