/** The section schema now lives in src/util/schema.ts, where the data room may use it too; kept here for imports. */
export * from '../util/schema.js';
