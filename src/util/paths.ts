import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: two levels up from src/util or dist/util. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
