import { InvalidArgumentError } from 'commander';

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
