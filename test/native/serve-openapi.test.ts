import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Engine } from '../../src/engine/Engine.js';
import { type InferenceServer, serve } from '../../src/serve/InferenceServer.js';
import { tinyModelPath } from '../helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = any;

interface Example {
  method: string;
  path: string;
  type: string;
  value: unknown;
  name: string;
}

/** Every request example of the document: requestBody media types' `example` and `examples`. */
function requestExamples(doc: Doc): Example[] {
  const found: Example[] = [];
  for (const [path, item] of Object.entries<Doc>(doc.paths)) {
    for (const [method, op] of Object.entries<Doc>(item)) {
      for (const [type, media] of Object.entries<Doc>(op.requestBody?.content ?? {})) {
        if (media.example !== undefined) found.push({ method, path, type, value: media.example, name: 'example' });
        for (const [name, ex] of Object.entries<Doc>(media.examples ?? {})) {
          found.push({ method, path, type, value: ex.value, name });
        }
      }
    }
  }
  return found;
}

/** Paths of schemas that are arrays without `items` (OpenAPI 3.0: "items MUST be present if type is array"). */
function arraysWithoutItems(node: unknown, at = '#'): string[] {
  if (typeof node !== 'object' || node === null) return [];
  const obj = node as Record<string, unknown>;
  const here = obj.type === 'array' && obj.items === undefined ? [at] : [];
  return here.concat(...Object.entries(obj).map(([k, v]) => arraysWithoutItems(v, `${at}/${k}`)));
}

/** The media types a documented response allows (none: the response has no body). */
function documentedTypes(op: Doc, status: number): string[] | undefined {
  const response = op.responses?.[String(status)] ?? op.responses?.default;
  return response ? Object.keys(response.content ?? {}) : undefined;
}

const CLASSES_SET = new Set<string>(['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']);

const mediaType = (header: string | null): string => (header ?? '').split(';')[0]!.trim().toLowerCase();

describe('the OpenAPI document matches the server', () => {
  let engine: Engine;
  let server: InferenceServer;
  let doc: Doc;

  beforeAll(async () => {
    engine = await Engine.load(tinyModelPath, { batchSize: 16 });
    server = await serve(engine, { port: 0 });
    const res = await fetch(`${server.url}/docs/json`);
    expect(res.status).toBe(200);
    doc = await res.json();
  });

  afterAll(async () => {
    await server?.close();
    await engine?.dispose();
  });

  it('is a valid OpenAPI 3.0 document (and /openapi.json is the same document)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toMatch(/^3\.0/);
    expect(arraysWithoutItems(doc)).toEqual([]);
    expect(await (await fetch(`${server.url}/openapi.json`)).json()).toEqual(doc);
  });

  it('every request example in the document works against the real server, as documented', async () => {
    const examples = requestExamples(doc);
    // /invocations documents its JSON forms and its CSV form.
    expect(examples.filter((e) => e.path === '/invocations').map((e) => e.type)).toEqual(
      expect.arrayContaining(['application/json', 'text/csv']),
    );
    // The Open Inference Protocol's infer endpoints document an example too.
    expect(examples.map((e) => e.path)).toContain('/v2/models/{name}/infer');
    for (const ex of examples) {
      const what = `${ex.method.toUpperCase()} ${ex.path} ${ex.type} ${ex.name}`;
      const url = ex.path.replace('{name}', 'tiny').replace('{version}', '1');
      const res = await fetch(`${server.url}${url}`, {
        method: ex.method.toUpperCase(),
        headers: { 'content-type': ex.type },
        body: typeof ex.value === 'string' ? ex.value : JSON.stringify(ex.value),
      });
      const text = await res.text();
      expect(res.status, `${what}: ${text}`).toBe(200);
      const op = doc.paths[ex.path][ex.method];
      expect(documentedTypes(op, res.status), what).toContain(mediaType(res.headers.get('content-type')));
      const body = JSON.parse(text);
      if (ex.path.startsWith('/v2/')) {
        expect(
          body.outputs.map((o: Doc) => o.name),
          what,
        ).toEqual(['label', 'probabilities']);
        expect(CLASSES_SET.has(body.outputs[0].data[0]), what).toBe(true);
        continue;
      }
      expect(body.predictions.length, what).toBeGreaterThan(0);
      expect(Object.keys(body.predictions[0].all_probabilities), what).toHaveLength(5);
    }
  });

  it('every GET endpoint answers a documented status with a documented content type', async () => {
    const gets = Object.entries<Doc>(doc.paths).filter(([, item]) => item.get);
    expect(gets.map(([p]) => p)).toEqual(
      expect.arrayContaining(['/', '/ping', '/health', '/metrics', '/v2', '/v2/health/ready', '/v2/models/{name}']),
    );
    for (const [path, item] of gets) {
      // Path parameters as written (an unknown model: 404) and filled in with the served model.
      const filled = path.replace('{name}', 'tiny').replace('{version}', '1');
      for (const url of new Set([path, filled])) {
        const res = await fetch(`${server.url}${url}`);
        await res.arrayBuffer();
        const types = documentedTypes(item.get, res.status);
        expect(types, `GET ${url}: status ${res.status} is not documented`).toBeDefined();
        expect(types, `GET ${url}`).toContain(mediaType(res.headers.get('content-type')));
        if (url === filled) expect(res.status, `GET ${url}`).toBe(200);
      }
    }
  });

  it('GET / lists every documented endpoint', async () => {
    const listed = ((await (await fetch(`${server.url}/`)).json()) as { endpoints: string[] }).endpoints;
    const documented = Object.entries<Doc>(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(listed).toEqual(expect.arrayContaining(documented));
    expect(listed).toEqual(expect.arrayContaining(['GET /docs', 'GET /openapi.json']));
  });
});
