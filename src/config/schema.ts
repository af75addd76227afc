import { ConfigError } from '../errors.js';
import { describeJson } from '../util/describe.js';

/** One key of a config section: its type, bounds, default and meaning. */
export type FieldSpec =
  | { type: 'int'; min: number; max: number; default: number; doc: string }
  | { type: 'number'; min: number; max: number; default: number; doc: string }
  | { type: 'bool'; default: boolean; doc: string }
  | { type: 'string'; default: string | null; doc: string; nullable?: boolean }
  | { type: 'enum'; values: readonly string[]; default: string; doc: string };

export type SectionSpec = Record<string, FieldSpec>;

/** The plain object a section spec describes. */
export type SectionOf<S extends SectionSpec> = {
  [K in keyof S]: S[K] extends { type: 'int' | 'number' }
    ? number
    : S[K] extends { type: 'bool' }
      ? boolean
      : S[K] extends { type: 'enum'; values: readonly (infer V)[] }
        ? V
        : S[K] extends { type: 'string'; nullable: true }
          ? string | null
          : string;
};

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

export function unknownKeyError(section: string, key: string, known: readonly string[]): ConfigError {
  const hint = closestKey(key, known);
  return new ConfigError(
    `Unknown key \`${section}.${key}\`${hint ? ` (did you mean \`${section}.${hint}\`?)` : ''}; ` +
      `known keys: ${known.join(', ')}`,
  );
}

/** Validates one section against its spec and fills defaults. Errors name the key, the expected type and the value. */
export function parseSection<S extends SectionSpec>(name: string, spec: S, raw: unknown): SectionOf<S> {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`Expected an object for \`${name}\` but received ${describeJson(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  const known = Object.keys(spec);
  for (const key of Object.keys(r)) if (!(key in spec)) throw unknownKeyError(name, key, known);
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(spec)) {
    const v = r[key];
    const where = `\`${name}.${key}\``;
    if (v === undefined) {
      out[key] = f.default;
      continue;
    }
    switch (f.type) {
      case 'int':
      case 'number': {
        const kind = f.type === 'int' ? 'an integer' : 'a number';
        if (typeof v !== 'number' || !Number.isFinite(v) || (f.type === 'int' && !Number.isInteger(v))) {
          throw new ConfigError(
            `Expected ${kind} between ${f.min} and ${f.max} for ${where} but received ${describeJson(v)}`,
          );
        }
        if (v < f.min || v > f.max) {
          throw new ConfigError(`Expected ${kind} between ${f.min} and ${f.max} for ${where} but received ${v}`);
        }
        out[key] = v;
        break;
      }
      case 'bool':
        if (typeof v !== 'boolean')
          throw new ConfigError(`Expected a boolean for ${where} but received ${describeJson(v)}`);
        out[key] = v;
        break;
      case 'string':
        if (v === null && f.nullable) {
          out[key] = null;
          break;
        }
        if (typeof v !== 'string' || v.length === 0) {
          throw new ConfigError(`Expected a non-empty string for ${where} but received ${describeJson(v)}`);
        }
        out[key] = v;
        break;
      case 'enum':
        if (typeof v !== 'string' || !f.values.includes(v)) {
          throw new ConfigError(`Expected one of ${f.values.join(', ')} for ${where} but received ${describeJson(v)}`);
        }
        out[key] = v;
        break;
    }
  }
  return out as SectionOf<S>;
}
