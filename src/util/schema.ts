import { ConfigError } from '../errors.js';
import { describeJson } from './describe.js';

/**
 * Config section schemas: each key of a section is described once (type, bounds, default, meaning), and
 * parseSection validates a raw section (YAML, JSON or an object) against it and fills the defaults. Errors name the
 * key with its full path (`data.augment.crop_scale[1]`), the expected type and bounds, and the value received;
 * unknown keys get a "did you mean" hint at every level.
 */

/** An integer in [min, max]. */
export interface IntField {
  type: 'int';
  /** Smallest accepted value. */
  min: number;
  /** Largest accepted value. */
  max: number;
  default: number;
  /** What the key means (shown in docs). */
  doc: string;
  /** A further check on a value within bounds: returns what is wrong with it, or undefined. */
  check?: (value: number) => string | undefined;
}

/** A finite number in [min, max]. */
export interface NumberField {
  type: 'number';
  min: number;
  max: number;
  default: number;
  doc: string;
  check?: (value: number) => string | undefined;
}

export interface BoolField {
  type: 'bool';
  default: boolean;
  doc: string;
}

/** A non-empty string. */
export interface StringField {
  type: 'string';
  /** The value when the key is absent; null only with `nullable`. Unused with `optional`. */
  default?: string | null;
  /** null is a value of its own (the typed object holds null). Defaults to false. */
  nullable?: boolean;
  /** No default: an absent key (or null) stays absent from the typed object. Defaults to false. */
  optional?: boolean;
  /** Lower-case the value before checking it (hex digests). Defaults to false. */
  lowercase?: boolean;
  /** The value must match this pattern... */
  pattern?: RegExp;
  /** ...described like this in errors ("64 hex digits"). Defaults to the pattern's source. */
  patternDoc?: string;
  doc: string;
}

export interface EnumField {
  type: 'enum';
  values: readonly string[];
  default: string;
  doc: string;
}

/** A list of non-empty strings. */
export interface StringsField {
  type: 'strings';
  /** Fewest entries accepted. */
  minItems: number;
  /** Refuse a repeated entry. Defaults to false. */
  unique?: boolean;
  /** What the entries are, plural, for errors ("class names"). */
  items: string;
  default: readonly string[];
  doc: string;
}

/** A fixed-length list of numbers, e.g. `[low, high]` or `[train, val, test]`. */
export interface TupleField {
  type: 'tuple';
  /** One name per entry; their count is the tuple's length. */
  names: readonly string[];
  /** Bounds of every entry. */
  min: number;
  max: number;
  /** Each entry at least the one before it (a range: low <= high). Defaults to false. */
  ordered?: boolean;
  default: readonly number[];
  doc: string;
  /** A check on the whole tuple once every entry is within bounds ("fractions sum to 1"). */
  check?: (value: readonly number[]) => string | undefined;
}

/** A nested section with its own keys. */
export interface SectionField {
  type: 'section';
  spec: SectionSpec;
  /** A bare boolean in place of the object sets this key of it (`augment: false`). Defaults to none. */
  shorthand?: string;
  doc: string;
}

/** One key of a config section: its type, bounds, default and meaning. */
export type FieldSpec =
  IntField | NumberField | BoolField | StringField | EnumField | StringsField | TupleField | SectionField;

export type SectionSpec = Record<string, FieldSpec>;

type Tuple<N extends number, T extends number[] = []> = T['length'] extends N ? T : Tuple<N, [...T, number]>;

/** The value one field describes. */
export type ValueOf<F> = F extends { type: 'int' | 'number' }
  ? number
  : F extends { type: 'bool' }
    ? boolean
    : F extends { type: 'enum'; values: readonly (infer V)[] }
      ? V
      : F extends { type: 'string'; nullable: true }
        ? string | null
        : F extends { type: 'string' }
          ? string
          : F extends { type: 'strings' }
            ? string[]
            : F extends { type: 'tuple'; names: { length: infer N extends number } }
              ? Tuple<N>
              : F extends { type: 'section'; spec: infer S extends SectionSpec }
                ? SectionOf<S>
                : never;

type OptionalKeys<S> = { [K in keyof S]: S[K] extends { optional: true } ? K : never }[keyof S];
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The plain object a section spec describes (keys as in the spec, i.e. as in the YAML). */
export type SectionOf<S extends SectionSpec> = Simplify<
  { -readonly [K in Exclude<keyof S, OptionalKeys<S>>]: ValueOf<S[K]> } & {
    -readonly [K in OptionalKeys<S>]?: ValueOf<S[K]>;
  }
>;

/** The closest known key, for "did you mean" hints (edit distance at most 3). */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 4;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] as number;
}

/** "Unknown key `data.augment.flip` (did you mean `data.augment.flip_probability`?); known keys: ...". */
export function unknownKeyError(section: string, key: string, known: readonly string[]): ConfigError {
  // Also matches a camelCase spelling of a snake_case key (imageSize -> image_size).
  const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  // ... or a key it begins (flip -> flip_probability).
  const prefixed = known.filter((k) => key.length >= 3 && k.toLowerCase().startsWith(snake.toLowerCase()));
  const hint = known.includes(snake) ? snake : prefixed.length === 1 ? prefixed[0] : closestKey(key, known);
  return new ConfigError(
    `Unknown key \`${section}.${key}\`${hint ? ` (did you mean \`${section}.${hint}\`?)` : ''}; ` +
      `known keys: ${known.join(', ')}`,
  );
}

/**
 * Checks that `keys` (an override's path below the section, e.g. ['augment', 'crop_scale']) names a key of `spec`,
 * descending into nested sections. Throws the same unknown-key error as parseSection.
 */
export function checkKeyPath(section: string, spec: SectionSpec, keys: readonly string[]): void {
  let where = section;
  let current: SectionSpec = spec;
  for (const [i, key] of keys.entries()) {
    const field = current[key];
    if (!Object.hasOwn(current, key) || !field) throw unknownKeyError(where, key, Object.keys(current));
    where = `${where}.${key}`;
    if (i === keys.length - 1) return;
    if (field.type !== 'section') {
      throw new ConfigError(`\`${where}\` is a single value (${field.type}), not a section with keys`);
    }
    current = field.spec;
  }
}

/** The typed object with every default, as parseSection gives for an empty section. */
export function defaultsOf<S extends SectionSpec>(name: string, spec: S): SectionOf<S> {
  return parseSection(name, spec, {});
}

/** Validates one section against its spec and fills defaults. Errors name the key, the expected type and the value. */
export function parseSection<S extends SectionSpec>(name: string, spec: S, raw: unknown): SectionOf<S> {
  return parseFields(name, spec, raw, 'an object') as SectionOf<S>;
}

function parseFields(where: string, spec: SectionSpec, raw: unknown, expected: string): Record<string, unknown> {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`Expected ${expected} for \`${where}\` but received ${describeJson(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  const known = Object.keys(spec);
  for (const key of Object.keys(r)) if (!Object.hasOwn(spec, key)) throw unknownKeyError(where, key, known);
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(spec)) {
    const value = parseField(`${where}.${key}`, field, r[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function parseField(path: string, f: FieldSpec, v: unknown): unknown {
  const where = `\`${path}\``;
  const fail = (expected: string, value: unknown = v): never => {
    throw new ConfigError(`Expected ${expected} for ${where} but received ${describeJson(value)}`);
  };
  const checked = <T>(value: T, check: ((value: T) => string | undefined) | undefined): T => {
    const problem = check?.(value);
    if (problem) throw new ConfigError(`${where} ${problem}`);
    return value;
  };
  switch (f.type) {
    case 'int':
    case 'number': {
      if (v === undefined) return f.default;
      return checked(bounded(path, f.type, v, f.min, f.max), f.check);
    }
    case 'bool':
      if (v === undefined) return f.default;
      if (typeof v !== 'boolean') fail('a boolean');
      return v;
    case 'string': {
      if (v === undefined || (v === null && f.optional)) return f.optional ? undefined : f.default;
      if (v === null && f.nullable) return null;
      if (typeof v !== 'string' || v.length === 0) fail('a non-empty string');
      const s = f.lowercase ? (v as string).toLowerCase() : (v as string);
      if (f.pattern && !f.pattern.test(s)) fail(f.patternDoc ?? `a string matching /${f.pattern.source}/`);
      return s;
    }
    case 'enum':
      if (v === undefined) return f.default;
      if (typeof v !== 'string' || !f.values.includes(v)) fail(`one of ${f.values.join(', ')}`);
      return v;
    case 'strings': {
      if (v === undefined) return [...f.default];
      const expected = `at least ${f.minItems} ${f.items} (a list of non-empty strings)`;
      if (!Array.isArray(v) || v.length < f.minItems) fail(expected);
      const list = v as unknown[];
      if (list.some((s) => typeof s !== 'string' || s.length === 0)) fail(expected);
      if (f.unique) {
        const repeated = list.find((s, i) => list.indexOf(s) !== i);
        if (repeated !== undefined) {
          throw new ConfigError(`Expected distinct ${f.items} for ${where} but received "${repeated}" more than once`);
        }
      }
      return [...(list as string[])];
    }
    case 'tuple': {
      if (v === undefined) return [...f.default];
      const n = f.names.length;
      const shape =
        `[${f.names.join(', ')}] (${n} numbers between ${f.min} and ${f.max}` +
        `${f.ordered ? `, ${f.names.join(' <= ')}` : ''})`;
      if (!Array.isArray(v) || v.length !== n) fail(shape);
      const out: number[] = [];
      for (const [i, item] of (v as unknown[]).entries()) {
        const low = f.ordered && i > 0 ? Math.max(f.min, out[i - 1] as number) : f.min;
        out.push(bounded(`${path}[${i}]`, 'number', item, low, f.max));
      }
      return checked(out, f.check);
    }
    case 'section': {
      if (f.shorthand !== undefined && typeof v === 'boolean')
        return parseFields(path, f.spec, { [f.shorthand]: v }, '');
      return parseFields(path, f.spec, v, f.shorthand !== undefined ? 'an object or a boolean' : 'an object');
    }
  }
}

function bounded(path: string, type: 'int' | 'number', v: unknown, min: number, max: number): number {
  const kind = type === 'int' ? 'an integer' : 'a number';
  if (typeof v !== 'number' || !Number.isFinite(v) || (type === 'int' && !Number.isInteger(v)) || v < min || v > max) {
    throw new ConfigError(`Expected ${kind} between ${min} and ${max} for \`${path}\` but received ${describeJson(v)}`);
  }
  return v;
}
