import { InvalidArgumentError } from 'commander';

import { TTA_MODES, type TtaMode } from '../engine/tta.js';

/** A commander argument parser for an integer option within [lo, hi]. */
export function parseInteger(flag: string, lo: number, hi: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < lo || n > hi) {
      throw new InvalidArgumentError(`${flag} expects an integer between ${lo} and ${hi}, received '${value}'`);
    }
    return n;
  };
}

/** A commander argument parser for a finite number within [lo, hi]. */
export function parseNumber(flag: string, lo: number, hi: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < lo || n > hi) {
      throw new InvalidArgumentError(`${flag} expects a number between ${lo} and ${hi}, received '${value}'`);
    }
    return n;
  };
}

/**
 * Checks that a flag's value is one of `choices` and returns it; otherwise throws RangeError "Expected a, b or c for
 * <flag> but received '<value>'".
 */
export function parseChoice<const T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    const list = choices.length > 1 ? `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}` : choices.join('');
    throw new RangeError(`Expected ${list} for ${flag} but received '${value}'`);
  }
  return value as T;
}

/** The command line as typed, for reports (arguments with spaces quoted). */
export function commandLine(): string {
  const args = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`));
  return `trt-flowers ${args.join(' ')}`;
}

/** A commander argument parser for `--tta <list>`: test-time augmentation modes (none, flip, crops). */
export function parseTtaList(value: string): TtaMode[] {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0 || parts.some((p) => !TTA_MODES.includes(p as TtaMode))) {
    throw new InvalidArgumentError(`--tta expects a list of none, flip and crops, received '${value}'`);
  }
  return parts as TtaMode[];
}
