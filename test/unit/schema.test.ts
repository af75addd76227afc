import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../src/errors.js';
import {
  checkKeyPath,
  defaultsOf,
  parseSection,
  unknownKeyError,
  type SectionOf,
  type SectionSpec,
} from '../../src/util/schema.js';

const INNER = {
  on: { type: 'bool', default: true, doc: 'switch' },
  range: { type: 'tuple', names: ['low', 'high'], min: 0, max: 10, ordered: true, default: [1, 2], doc: 'a range' },
} as const satisfies SectionSpec;

const SPEC = {
  count: {
    type: 'int',
    min: 1,
    max: 9,
    default: 3,
    doc: 'odd count',
    check: (v) => (v % 2 ? undefined : 'must be odd'),
  },
  ratio: { type: 'number', min: 0, max: 1, default: 0.5, doc: 'a ratio' },
  mode: { type: 'enum', values: ['a', 'b'], default: 'a', doc: 'mode' },
  name: { type: 'string', optional: true, doc: 'optional name' },
  file: { type: 'string', nullable: true, default: null, doc: 'nullable file' },
  digest: {
    type: 'string',
    default: '00ff',
    lowercase: true,
    pattern: /^[0-9a-f]{4}$/,
    patternDoc: '4 hex digits',
    doc: 'digest',
  },
  tags: { type: 'strings', minItems: 1, unique: true, items: 'tags', default: ['x'], doc: 'tags' },
  parts: {
    type: 'tuple',
    names: ['p', 'q', 'r'],
    min: 0,
    max: 1,
    default: [0.5, 0.25, 0.25],
    doc: 'parts',
    check: (v) => (v.reduce((a, b) => a + b, 0) === 1 ? undefined : 'must sum to 1'),
  },
  inner: { type: 'section', spec: INNER, shorthand: 'on', doc: 'nested' },
  plain: { type: 'section', spec: { deep: { type: 'int', min: 0, max: 1, default: 0, doc: 'd' } }, doc: 'nested' },
} as const satisfies SectionSpec;

type Top = SectionOf<typeof SPEC>;

const parse = (raw: unknown): Top => parseSection('top', SPEC, raw);

describe('section schema', () => {
  it('fills every default, typed', () => {
    const d: Top = defaultsOf('top', SPEC);
    expect(d).toEqual({
      count: 3,
      ratio: 0.5,
      mode: 'a',
      file: null,
      digest: '00ff',
      tags: ['x'],
      parts: [0.5, 0.25, 0.25],
      inner: { on: true, range: [1, 2] },
      plain: { deep: 0 },
    });
    // The typed object: a tuple of two, an optional key, a nullable one.
    const range: [number, number] = d.inner.range;
    const name: string | undefined = d.name;
    const file: string | null = d.file;
    expect([range, name, file]).toEqual([[1, 2], undefined, null]);
    expect(parse(null)).toEqual(d);
  });

  it('keeps valid values and applies the shorthand, lower-casing and ordering', () => {
    const v = parse({
      count: 5,
      name: 'n',
      file: 'f.pt',
      digest: 'ABCD',
      tags: ['a', 'b'],
      parts: [1, 0, 0],
      inner: false,
    });
    expect(v).toMatchObject({ count: 5, name: 'n', file: 'f.pt', digest: 'abcd', tags: ['a', 'b'], parts: [1, 0, 0] });
    expect(v.inner).toEqual({ on: false, range: [1, 2] });
    expect(parse({ inner: { range: [3, 3] } }).inner).toEqual({ on: true, range: [3, 3] });
    expect(parse({ name: null })).not.toHaveProperty('name');
  });

  it.each([
    [{ count: 0 }, 'Expected an integer between 1 and 9 for `top.count` but received 0 of type number'],
    [{ count: 2.5 }, 'Expected an integer between 1 and 9 for `top.count` but received 2.5 of type number'],
    [{ count: 4 }, '`top.count` must be odd'],
    [{ ratio: '0.5' }, 'Expected a number between 0 and 1 for `top.ratio` but received "0.5" of type string'],
    [{ ratio: Number.NaN }, /a number between 0 and 1 for `top.ratio`/],
    [{ mode: 'c' }, 'Expected one of a, b for `top.mode` but received "c" of type string'],
    [{ name: 3 }, 'Expected a non-empty string for `top.name` but received 3 of type number'],
    [{ digest: null }, 'Expected a non-empty string for `top.digest` but received null'],
    [{ digest: 'xyz0' }, 'Expected 4 hex digits for `top.digest` but received "xyz0" of type string'],
    [
      { tags: [] },
      'Expected at least 1 tags (a list of non-empty strings) for `top.tags` but received [] of type array',
    ],
    [{ tags: 'a' }, /at least 1 tags .* for `top.tags` but received "a" of type string/],
    [{ tags: ['a', 1] }, /for `top.tags` but received \["a",1\] of type array/],
    [{ tags: ['a', 'a'] }, 'Expected distinct tags for `top.tags` but received "a" more than once'],
    [
      { parts: [1, 0] },
      'Expected [p, q, r] (3 numbers between 0 and 1) for `top.parts` but received [1,0] of type array',
    ],
    [{ parts: [0.5, 2, 0] }, 'Expected a number between 0 and 1 for `top.parts[1]` but received 2 of type number'],
    [{ parts: [0.5, 0.5, 0.5] }, '`top.parts` must sum to 1'],
    [
      { inner: { range: [5] } },
      /Expected \[low, high\] \(2 numbers between 0 and 10, low <= high\) for `top.inner.range`/,
    ],
    [
      { inner: { range: [5, 4] } },
      'Expected a number between 5 and 10 for `top.inner.range[1]` but received 4 of type number',
    ],
    [{ inner: { on: 1 } }, 'Expected a boolean for `top.inner.on` but received 1 of type number'],
    [{ inner: 'yes' }, 'Expected an object or a boolean for `top.inner` but received "yes" of type string'],
    [{ plain: true }, 'Expected an object for `top.plain` but received true of type boolean'],
    [{ plain: { deep: 2 } }, /`top.plain.deep` but received 2/],
    [
      { inner: { rnage: [1, 2] } },
      'Unknown key `top.inner.rnage` (did you mean `top.inner.range`?); known keys: on, range',
    ],
    [{ plain: { deeep: 1 } }, /Unknown key `top.plain.deeep` \(did you mean `top.plain.deep`\?\)/],
    [{ cnt: 1 }, /Unknown key `top.cnt` \(did you mean `top.count`\?\); known keys: count, ratio, mode/],
    [[1], 'Expected an object for `top` but received [1] of type array'],
  ])('rejects %j', (raw, message) => {
    expect(() => parse(raw)).toThrow(ConfigError);
    expect(() => parse(raw)).toThrow(message);
  });

  it('hints at the snake_case spelling and at a key a prefix begins', () => {
    const known = ['image_size', 'flip_probability', 'flop'];
    expect(unknownKeyError('data', 'imageSize', known).message).toMatch(/did you mean `data.image_size`/);
    expect(unknownKeyError('data', 'flip', known).message).toMatch(/did you mean `data.flip_probability`/);
    expect(unknownKeyError('data', 'flup', known).message).toMatch(/did you mean `data.flop`/);
    expect(unknownKeyError('data', 'flip_p', known).message).toMatch(/did you mean `data.flip_probability`/);
    expect(unknownKeyError('data', 'zzzzzz', known).message).not.toMatch(/did you mean/);
  });

  it('checks a key path into nested sections (overrides)', () => {
    expect(() => checkKeyPath('top', SPEC, ['inner', 'range'])).not.toThrow();
    expect(() => checkKeyPath('top', SPEC, ['inner'])).not.toThrow();
    expect(() => checkKeyPath('top', SPEC, [])).not.toThrow();
    expect(() => checkKeyPath('top', SPEC, ['inner', 'of'])).toThrow(
      /Unknown key `top.inner.of` \(did you mean `top.inner.on`\?\)/,
    );
    expect(() => checkKeyPath('top', SPEC, ['parts', 'p'])).toThrow(
      '`top.parts` is a single value (tuple), not a section with keys',
    );
    expect(() => checkKeyPath('top', SPEC, ['toString'])).toThrow(/Unknown key `top.toString`/);
  });
});
