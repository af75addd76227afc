/** How a received value is shown in error messages ("but received ..."). */

/** `'text' of type string`, `5 of type number`, `an object of type Foo`, `null`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `'${value}' of type string`;
  if (typeof value === 'object') return `an object of type ${value.constructor?.name ?? 'Object'}`;
  return `${String(value)} of type ${typeof value}`;
}

/** A value read from JSON or YAML, shown as JSON: `"abc" of type string`, `[1,2] of type array`, `null`. */
export function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `${JSON.stringify(value)} of type array`;
  return `${JSON.stringify(value)} of type ${typeof value}`;
}
