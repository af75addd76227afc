import { DisposedError, InvalidImageError, TrtFlowersError } from '../errors.js';
import { QueueFullError } from './Batcher.js';

/** The body of every error response: `{ "error": { "code", "message" } }`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** An error with its HTTP status and a stable code, answered as an ErrorBody. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(statusCode: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.code = code;
    this.headers = headers;
  }

  get body(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

const PIXEL_LIMIT = /exceeds (the )?(pixel )?limit/i;

/** An image that could not be used, named as the client sent it. */
export function imageError(err: unknown, name: string): HttpError {
  const message = (err as Error)?.message ?? String(err);
  // The decoder's message names an in-memory buffer; the client knows the image by its name.
  const reason = message.replace(/^cannot decode the image buffer: /, '');
  if (PIXEL_LIMIT.test(reason)) return new HttpError(413, 'ERR_IMAGE_TOO_LARGE', `${name} is too large: ${reason}`);
  return new HttpError(400, 'ERR_INVALID_IMAGE', `${name} is not a usable image: ${reason}`);
}

/** Fastify's and its plugins' own error codes, as this server answers them. */
const FRAMEWORK: Record<string, [number, string, string?]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'ERR_BODY_TOO_LARGE'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'ERR_BAD_REQUEST'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'ERR_EMPTY_REQUEST', 'the JSON body is empty'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'ERR_BAD_JSON'],
  FST_ERR_VALIDATION: [400, 'ERR_BAD_REQUEST'],
  FST_REQ_FILE_TOO_LARGE: [413, 'ERR_BODY_TOO_LARGE'],
  FST_PARTS_LIMIT: [413, 'ERR_BODY_TOO_LARGE', 'too many parts in the multipart body'],
  FST_FIELDS_LIMIT: [413, 'ERR_BODY_TOO_LARGE', 'too many form fields in the multipart body'],
  FST_PROTO_VIOLATION: [400, 'ERR_BAD_MULTIPART'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
  FST_INVALID_JSON_FIELD_ERROR: [400, 'ERR_BAD_MULTIPART'],
  FST_MP_PREMATURE_CLOSE: [400, 'ERR_BAD_MULTIPART'],
};

/**
 * Maps anything thrown while handling a request to an HttpError. Client mistakes become 4xx with a code; only a
 * failure of the server itself (the engine failing on a valid batch) is a 5xx.
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof QueueFullError) return new HttpError(503, err.code, err.message, { 'retry-after': '1' });
  if (err instanceof InvalidImageError) return imageError(err, 'the image');
  if (err instanceof DisposedError) {
    return new HttpError(503, 'ERR_SHUTTING_DOWN', 'the server is shutting down', { connection: 'close' });
  }
  if (err instanceof TrtFlowersError) return new HttpError(500, err.code, err.message);
  const e = err as { code?: string; statusCode?: number; message?: string } | undefined;
  const message = e?.message ?? String(err);
  // The client went away mid-request (or was cut off by a timeout): nobody reads the answer.
  if (e?.code === 'ECONNRESET' || message === 'aborted') {
    return new HttpError(400, 'ERR_CLIENT_CLOSED', 'the client closed the connection before the request was complete');
  }
  const known = e?.code ? FRAMEWORK[e.code] : undefined;
  if (known) return new HttpError(known[0], known[1], known[2] ?? message);
  // busboy's parse errors ("Multipart: Boundary not found", "Unexpected end of form", ...) carry no code.
  if (/multipart|unexpected end of (form|multipart)|malformed part header/i.test(message)) {
    return new HttpError(400, 'ERR_BAD_MULTIPART', `malformed multipart/form-data body: ${message}`);
  }
  const status = e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new HttpError(status, e?.code ?? 'ERR_BAD_REQUEST', message);
  }
  return new HttpError(500, 'ERR_INTERNAL', message);
}
