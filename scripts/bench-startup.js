/**
 * Start-up time of the `trt-flowers` command: commands that only print (--version, --help, a command's --help) and
 * one that loads the addon and the runtimes (doctor), against bare `node -e 0` in the same run (the baseline: what
 * any Node program pays). Runs are interleaved round by round so a noisy machine slows every row alike; warm-up
 * rounds first (file cache), then the median and p90 of the timed rounds.
 *
 *   npx tsc -p tsconfig.build.json   # this script runs bin/trt-flowers.js over dist/
 *   node scripts/bench-startup.js [--rounds 15] [--warmup 3] [--json]
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { summarize } from '../dist/bench/stats.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  const v = Number(i >= 0 ? argv[i + 1] : fallback);
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`--${name} expects a non-negative integer, received ${v}`);
  return v;
};
const rounds = Math.max(1, arg('rounds', 15));
const warmup = arg('warmup', 3);
const bin = join(root, 'bin', 'trt-flowers.js');

const cases = [
  { name: 'node -e 0 (baseline)', args: ['-e', '0'] },
  { name: 'trt-flowers --version', args: [bin, '--version'] },
  { name: 'trt-flowers --help', args: [bin, '--help'] },
  { name: 'trt-flowers train --help', args: [bin, 'train', '--help'] },
  { name: 'trt-flowers serve --help', args: [bin, 'serve', '--help'] },
  { name: 'trt-flowers doctor --json', args: [bin, 'doctor', '--json'] },
];

function once(args) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const samples = cases.map(() => []);
for (let round = 0; round < warmup + rounds; round++) {
  cases.forEach((c, i) => {
    const ms = once(c.args);
    if (round >= warmup) samples[i].push(ms);
  });
}
const baseline = summarize(samples[0]).median;
const rows = cases.map((c, i) => {
  const s = summarize(samples[i]);
  return { command: c.name, median_ms: s.median, p90_ms: s.p90, over_baseline_ms: s.median - baseline };
});
if (argv.includes('--json')) {
  process.stdout.write(`${JSON.stringify({ rounds, warmup, rows }, null, 2)}\n`);
} else {
  process.stdout.write(`start-up, ${rounds} rounds after ${warmup} warm-up (median / p90, ms; + over bare node)\n`);
  for (const r of rows) {
    process.stdout.write(
      `${r.command.padEnd(28)} ${r.median_ms.toFixed(0).padStart(6)} ${r.p90_ms.toFixed(0).padStart(6)}  +${r.over_baseline_ms.toFixed(0)}\n`,
    );
  }
}
