import { describe, expect, it } from 'vitest';

import { createProgram } from '../../src/cli/index.js';
import { parseChoice, parseInteger, parseNumber } from '../../src/cli/parse.js';

describe('CLI parsing', () => {
  it('registers the commands', () => {
    const names = createProgram().commands.map((c) => c.name());
    expect(names).toEqual(expect.arrayContaining(['doctor', 'export-backbone']));
  });

  it('integer and number options name the flag and what was received', () => {
    const p = parseInteger('--num-classes', 2, 10);
    expect(p('5')).toBe(5);
    expect(() => p('1')).toThrow("--num-classes expects an integer between 2 and 10, received '1'");
    expect(() => p('2.5')).toThrow(/integer/);
    expect(() => p('abc')).toThrow(/received 'abc'/);
    const n = parseNumber('--lr', 0, 1);
    expect(n('0.5')).toBe(0.5);
    expect(() => n('NaN')).toThrow(/--lr/);
    expect(() => n('')).toThrow(/--lr/);
  });

  it('choice options list the choices and what was received', () => {
    expect(parseChoice('--format', 'csv', ['json', 'csv'])).toBe('csv');
    expect(() => parseChoice('--format', 'xml', ['json', 'csv'])).toThrow(
      new RangeError("Expected json or csv for --format but received 'xml'"),
    );
    expect(() => parseChoice('--device', 'tpu', ['auto', 'cpu', 'cuda'])).toThrow(
      "Expected auto, cpu or cuda for --device but received 'tpu'",
    );
  });
});
