import { sniffFormat } from '../data/probe.js';
import { HttpError } from './httpErrors.js';
import { checkImageCount, fromBase64, type Upload } from './uploads.js';

const FIELD_END = /[,\r\n]/g;

/**
 * Parses CSV text (RFC 4180: comma-separated, CRLF or LF line ends, double-quoted fields with "" for a quote) into
 * rows of fields; blank lines are skipped. Scans with indexOf and a sticky regex so that a body of megabytes of base64
 * costs a few slices, not a loop per character. Throws a 400 HttpError on an unclosed quote.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a UTF-8 byte order mark
  let row: string[] = [];
  while (i < n) {
    let field: string;
    if (text[i] === '"') {
      field = '';
      let from = i + 1;
      for (;;) {
        const quote = text.indexOf('"', from);
        if (quote < 0)
          throw new HttpError(
            400,
            'ERR_BAD_REQUEST',
            `malformed CSV: a quote opened on row ${rows.length + 1} is never closed`,
          );
        field += text.slice(from, quote);
        if (text[quote + 1] === '"') {
          field += '"';
          from = quote + 2;
          continue;
        }
        i = quote + 1;
        break;
      }
    } else {
      FIELD_END.lastIndex = i;
      const end = FIELD_END.exec(text)?.index ?? n;
      field = text.slice(i, end);
      i = end;
    }
    row.push(field);
    const c = text[i];
    if (c === ',') {
      i++;
      if (i === n) row.push('');
      continue;
    }
    if (c === '\r' || c === '\n') i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
    else if (i < n) {
      throw new HttpError(
        400,
        'ERR_BAD_REQUEST',
        `malformed CSV: text after a closing quote on row ${rows.length + 1}`,
      );
    }
    if (row.length > 1 || row[0] !== '') rows.push(row);
    row = [];
  }
  if (row.length > 0) rows.push(row);
  return rows;
}

/** True when a cell is base64 of a JPEG, PNG, WebP, TIFF or BMP file (its first bytes are enough). */
function looksLikeImage(cell: string): boolean {
  const body = cell.startsWith('data:') ? cell.slice(cell.indexOf(',') + 1) : cell;
  const head = body.trimStart().slice(0, 24);
  if (head.length < 16) return false;
  return sniffFormat(Buffer.from(head, /[-_]/.test(head) ? 'base64url' : 'base64')) !== undefined;
}

/** Column names that hold the image, when a header names one. */
const IMAGE_COLUMNS = new Set(['image', 'images', 'b64', 'base64', 'data', 'input', 'inputs']);

/**
 * The images of an MLflow CSV scoring request: one base64-encoded image per row. MLflow reads CSV with pandas, so
 * clients send a header row (`image`, or `,image` with the index column of `DataFrame.to_csv()`); a header is also
 * optional here: the first row is data when one of its cells is a base64 image. The image column is the one the
 * header names `image` (or `b64`, `data`...), else the first one that is not an integer index.
 */
export function csvImages(text: string, maxImages: number): Upload[] {
  const rows = parseCsv(text);
  const first = rows[0] ?? [];
  const header = !first.some(looksLikeImage);
  const data = header ? rows.slice(1) : rows;
  checkImageCount(data.length, maxImages, 'the CSV body');
  let at = header
    ? first.findIndex((name) => IMAGE_COLUMNS.has(name.trim().toLowerCase()))
    : first.findIndex(looksLikeImage);
  if (at < 0)
    at = Math.max(
      0,
      (data[0] ?? []).findIndex((cell) => !/^\s*\d*\s*$/.test(cell)),
    );
  return data.map((row, i) => {
    const where = `CSV row ${i + 1}${header ? ' after the header' : ''}`;
    const cell = row[at];
    if (cell === undefined) throw new HttpError(400, 'ERR_BAD_REQUEST', `${where} has no column ${at + 1}`);
    return { name: where, bytes: fromBase64(cell, where) };
  });
}
