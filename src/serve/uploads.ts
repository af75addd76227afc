import type { FastifyRequest } from 'fastify';

import { HttpError } from './httpErrors.js';

/** One image received in a request: its bytes and the name it is reported under. */
export interface Upload {
  name: string;
  bytes: Buffer;
}

export interface MultipartLimits {
  /** Form fields holding images; a file in any other field is an error. */
  fields: readonly string[];
  maxFiles: number;
  maxFileBytes: number;
  maxBodyBytes: number;
  /** What the route is called in messages ("POST /predict"). */
  route: string;
}

/**
 * Reads the image files of a multipart/form-data request with @fastify/multipart's streaming parser, within the
 * limits. `onFile` is called as each file completes, so decoding overlaps the rest of the upload.
 */
export async function readMultipartImages(
  request: FastifyRequest,
  limits: MultipartLimits,
  onFile: (upload: Upload, index: number) => void,
): Promise<number> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.maxBodyBytes) {
    throw bodyTooLarge(limits.maxBodyBytes, declared);
  }
  const fieldList = limits.fields.map((f) => `\`${f}\``).join(' or ');
  let count = 0;
  let total = 0;
  const parts = request.parts({
    limits: {
      files: limits.maxFiles,
      fileSize: limits.maxFileBytes,
      fields: 32,
      fieldSize: 64 * 1024,
      parts: limits.maxFiles + 32,
      headerPairs: 100,
    },
  });
  try {
    for await (const part of parts) {
      if (part.type !== 'file') continue; // other form fields are ignored
      if (!limits.fields.includes(part.fieldname)) {
        throw new HttpError(
          400,
          'ERR_BAD_REQUEST',
          `${limits.route} takes images in the form field ${fieldList}; received a file in field '${part.fieldname}'`,
        );
      }
      const bytes = await part.toBuffer();
      total += bytes.length;
      if (total > limits.maxBodyBytes) throw bodyTooLarge(limits.maxBodyBytes);
      onFile({ name: part.filename || `${part.fieldname}[${count}]`, bytes }, count);
      count++;
    }
  } catch (err) {
    discardRest(request, limits.maxBodyBytes);
    const code = (err as { code?: string }).code;
    if (code === 'FST_FILES_LIMIT') {
      throw new HttpError(
        400,
        'ERR_TOO_MANY_FILES',
        limits.maxFiles === 1
          ? `${limits.route} takes one image in field ${fieldList}; use POST /predict/batch for several`
          : `${limits.route} takes at most ${limits.maxFiles} images per request; received more`,
      );
    }
    if (code === 'FST_REQ_FILE_TOO_LARGE') {
      throw new HttpError(
        413,
        'ERR_BODY_TOO_LARGE',
        `an uploaded file is larger than the limit of ${limits.maxFileBytes} bytes per image`,
      );
    }
    throw err;
  }
  if (count === 0) {
    throw new HttpError(
      400,
      'ERR_NO_FILE',
      `no image in the request: send multipart/form-data with the image file in field ${fieldList}`,
    );
  }
  return count;
}

/**
 * After a refusal in the middle of an upload, reads the rest of the body and drops it, as Node does for a body that
 * no handler reads: otherwise the parser, paused on a part nobody consumes, holds the connection (and what it has
 * buffered) until the keep-alive timeout, and the client's next request on it is never answered. At most `maxBytes`
 * more are read; past that the connection is closed.
 */
function discardRest(request: FastifyRequest, maxBytes: number): void {
  const raw = request.raw;
  if (raw.readableEnded || raw.destroyed) return;
  raw.unpipe();
  let dropped = 0;
  raw.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > maxBytes) raw.socket.destroy();
  });
  raw.resume();
}

function bodyTooLarge(limit: number, size?: number): HttpError {
  return new HttpError(
    413,
    'ERR_BODY_TOO_LARGE',
    `the request body${size === undefined ? '' : ` (${size} bytes)`} is larger than the limit of ${limit} bytes`,
  );
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Decodes one base64 image (standard or URL alphabet, with or without a `data:` URL prefix). */
export function fromBase64(value: unknown, where: string): Buffer {
  let text: unknown = value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    text = obj.b64 ?? obj.image ?? obj.data ?? (keys.length === 1 ? obj[keys[0] as string] : undefined);
  }
  if (typeof text !== 'string') {
    throw new HttpError(400, 'ERR_BAD_REQUEST', `${where} must be a base64-encoded image (a string or {"b64": ...})`);
  }
  const body = text.startsWith('data:') ? text.slice(text.indexOf(',') + 1) : text;
  const compact = body.replace(/\s+/g, '');
  if (compact.length === 0) throw new HttpError(400, 'ERR_INVALID_IMAGE', `${where} is empty`);
  if (!BASE64.test(compact)) throw new HttpError(400, 'ERR_BAD_REQUEST', `${where} is not valid base64`);
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}

/** The images of one MLflow column: a list of base64 strings or {b64} objects. */
function column(values: unknown, where: string): unknown[] {
  if (!Array.isArray(values)) throw new HttpError(400, 'ERR_BAD_REQUEST', `${where} must be a list of images`);
  return values;
}

/**
 * The images of an MLflow scoring request (`/invocations`): `instances`, `inputs`, `dataframe_split` or
 * `dataframe_records`, each image base64-encoded.
 */
export function invocationImages(body: unknown, maxImages: number): Upload[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(
      400,
      'ERR_BAD_REQUEST',
      'expected a JSON object with one of `instances`, `inputs`, `dataframe_split` or `dataframe_records`',
    );
  }
  const b = body as Record<string, unknown>;
  const keys = ['instances', 'inputs', 'dataframe_split', 'dataframe_records'].filter((k) => b[k] !== undefined);
  if (keys.length !== 1) {
    throw new HttpError(
      400,
      'ERR_BAD_REQUEST',
      keys.length === 0
        ? 'expected one of `instances`, `inputs`, `dataframe_split` or `dataframe_records` in the JSON body'
        : `expected one input key, received ${keys.map((k) => `\`${k}\``).join(' and ')}`,
    );
  }
  const key = keys[0] as string;
  let items: unknown[];
  let where: (i: number) => string;
  if (key === 'instances' || key === 'inputs') {
    let value = b[key];
    // {"inputs": {"image": [...]}}: a named input.
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const named = Object.entries(value as Record<string, unknown>);
      if (named.length !== 1) {
        throw new HttpError(400, 'ERR_BAD_REQUEST', `\`${key}\` as an object must name exactly one input`);
      }
      value = (named[0] as [string, unknown])[1];
    }
    // {"inputs": "<base64>"}: MLflow's scalar input, one image.
    items = typeof value === 'string' ? [value] : column(value, `\`${key}\``);
    where = (i) => (typeof value === 'string' ? key : `${key}[${i}]`);
  } else if (key === 'dataframe_split') {
    const split = b.dataframe_split as { columns?: unknown; data?: unknown };
    const columns = Array.isArray(split?.columns) ? split.columns : [];
    const at = Math.max(0, columns.indexOf('image'));
    const rows = column(split?.data, '`dataframe_split.data`');
    items = rows.map((row, i) => {
      if (!Array.isArray(row)) throw new HttpError(400, 'ERR_BAD_REQUEST', `dataframe_split.data[${i}] must be a list`);
      return row[at];
    });
    where = (i) => `dataframe_split.data[${i}]`;
  } else {
    items = column(b.dataframe_records, '`dataframe_records`').map((rec) => {
      if (typeof rec === 'object' && rec !== null && !Array.isArray(rec)) {
        const r = rec as Record<string, unknown>;
        return r.image ?? Object.values(r)[0];
      }
      return rec;
    });
    where = (i) => `dataframe_records[${i}]`;
  }
  checkImageCount(items.length, maxImages, `\`${key}\``);
  return items.map((item, i) => ({ name: where(i), bytes: fromBase64(item, where(i)) }));
}

/** The 4xx for an /invocations request with no image or more than `maxImages`. */
export function checkImageCount(count: number, maxImages: number, what: string): void {
  if (count === 0) throw new HttpError(400, 'ERR_NO_FILE', `${what} holds no images`);
  if (count > maxImages) {
    throw new HttpError(
      400,
      'ERR_TOO_MANY_FILES',
      `POST /invocations takes at most ${maxImages} images per request; received ${count}`,
    );
  }
}
