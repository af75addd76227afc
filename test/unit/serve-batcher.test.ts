import { describe, expect, it } from 'vitest';

import { DisposedError, InvalidImageError } from '../../src/errors.js';
import { Batcher, QueueFullError } from '../../src/serve/Batcher.js';
import { toHttpError } from '../../src/serve/httpErrors.js';
import { resolveServeOptions } from '../../src/serve/options.js';
import { invocationImages } from '../../src/serve/uploads.js';

/** A run function that records its batches and answers each value doubled, after `ms`. */
function recorder(ms = 0) {
  const batches: number[][] = [];
  let running = 0;
  let maxRunning = 0;
  const run = async (values: number[]): Promise<number[]> => {
    batches.push(values);
    running++;
    maxRunning = Math.max(maxRunning, running);
    await new Promise((r) => setTimeout(r, ms));
    running--;
    return values.map((v) => v * 2);
  };
  return { run, batches, maxRunning: () => maxRunning };
}

describe('Batcher (dynamic batching)', () => {
  it('groups items submitted together up to maxBatch, answers each caller in order', async () => {
    const r = recorder(5);
    const b = new Batcher(r.run, { maxBatch: 4, maxWaitMs: 50, concurrency: 1, maxQueue: 100 });
    const results = await Promise.all([b.submit([1, 2]), b.submit([3]), b.submit([4, 5, 6]), b.submit([7])]);
    expect(results).toEqual([[2, 4], [6], [8, 10, 12], [14]]);
    expect(r.batches).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7],
    ]);
    expect(r.maxRunning()).toBe(1);
  });

  it('runAlone takes a free slot of an idle batcher (counted, seen by onBatch and close) and refuses otherwise', async () => {
    const r = recorder(20);
    const seen: number[] = [];
    const b = new Batcher(r.run, {
      maxBatch: 4,
      maxWaitMs: 50,
      concurrency: 1,
      maxQueue: 100,
      onBatch: ({ size }) => seen.push(size),
    });
    let release: () => void = () => undefined;
    const alone = b.runAlone(1, () => new Promise<string>((resolve) => (release = () => resolve('done'))));
    expect(alone).toBeDefined();
    expect(b.running).toBe(1);
    // The one slot is taken: a second caller is refused, and a submission waits for the slot.
    expect(b.runAlone(1, async () => 'no')).toBeUndefined();
    const queued = b.submit([5]);
    expect(b.runAlone(1, async () => 'no')).toBeUndefined(); // the queue is not empty
    let closed = false;
    const closing = b.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toBe(false);
    release();
    expect(await alone).toBe('done');
    expect(await queued).toEqual([10]);
    await closing;
    expect(seen).toEqual([1, 1]);
    await expect(b.runAlone(1, async () => 'late')).rejects.toThrow(DisposedError);
    // A failing call frees its slot too.
    const c = new Batcher(r.run, { maxBatch: 4, maxWaitMs: 1, concurrency: 1, maxQueue: 100 });
    await expect(c.runAlone(1, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(c.running).toBe(0);
    expect(await c.submit([1])).toEqual([2]);
  });

  it('runs a lone item after maxWaitMs, or at once when nothing else is on its way', async () => {
    const r = recorder();
    let incoming = 1;
    const b = new Batcher(r.run, {
      maxBatch: 8,
      maxWaitMs: 200,
      concurrency: 1,
      maxQueue: 100,
      incoming: () => incoming,
    });
    const t0 = performance.now();
    await b.submit([1]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
    incoming = 0;
    const t1 = performance.now();
    await b.submit([2]);
    expect(performance.now() - t1).toBeLessThan(150);
    expect(r.batches).toEqual([[1], [2]]);
  });

  it('keeps at most `concurrency` runs in flight and takes what queued meanwhile as the next batch', async () => {
    const r = recorder(20);
    const b = new Batcher(r.run, { maxBatch: 3, maxWaitMs: 0, concurrency: 2, maxQueue: 100 });
    const all = Array.from({ length: 10 }, (_, i) => b.submit([i]));
    expect((await Promise.all(all)).flat()).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i));
    expect(r.maxRunning()).toBe(2);
    expect(r.batches.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(Math.max(...r.batches.map((x) => x.length))).toBeLessThanOrEqual(3);
    expect(r.batches.length).toBeLessThan(10);
  });

  it('refuses items beyond maxQueue, passes run errors to every caller of the batch, and drains on close', async () => {
    let fail = true;
    const b = new Batcher(
      async (values: number[]) => {
        await new Promise((r) => setTimeout(r, 10));
        if (fail) throw new Error('engine failed');
        return values;
      },
      { maxBatch: 2, maxWaitMs: 1, concurrency: 1, maxQueue: 3 },
    );
    const first = b.submit([1, 2]);
    const second = b.submit([3]);
    await expect(b.submit([4, 5, 6])).rejects.toBeInstanceOf(QueueFullError);
    await expect(first).rejects.toThrow('engine failed');
    await expect(second).rejects.toThrow('engine failed');
    fail = false;
    const last = b.submit([7]);
    await b.close();
    await expect(last).resolves.toEqual([7]);
    await expect(b.submit([8])).rejects.toBeInstanceOf(DisposedError);
    expect(b.depth).toBe(0);
  });
});

describe('serve: options, error mapping and the MLflow input formats', () => {
  it('checks options and names the bad one', () => {
    expect(resolveServeOptions({}).maxImagesPerRequest).toBe(10);
    expect(() => resolveServeOptions({ maxBatch: 0 })).toThrow(/`maxBatch`/);
    expect(() => resolveServeOptions({ port: 70000 })).toThrow(/between 0 and 65535 for `port`/);
    expect(() => resolveServeOptions({ host: '' })).toThrow(TypeError);
    expect(resolveServeOptions({ requestTimeoutMs: 500 }).headersTimeoutMs).toBe(500);
  });

  it('maps errors to 4xx for bad input and 5xx only for the server', () => {
    const image = toHttpError(new InvalidImageError('cannot decode the image buffer: Input image exceeds pixel limit'));
    expect([image.statusCode, image.code]).toEqual([413, 'ERR_IMAGE_TOO_LARGE']);
    const corrupt = toHttpError(new InvalidImageError('cannot decode the image buffer: VipsJpeg: premature end'));
    expect([corrupt.statusCode, corrupt.code]).toEqual([400, 'ERR_INVALID_IMAGE']);
    expect(toHttpError(new QueueFullError(5)).statusCode).toBe(503);
    const framework = Object.assign(new Error('Request body is too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
    expect(toHttpError(framework).statusCode).toBe(413);
    expect(toHttpError(new Error('Multipart: Boundary not found')).code).toBe('ERR_BAD_MULTIPART');
    expect(toHttpError(new Error('something broke')).statusCode).toBe(500);
  });

  it('reads base64 images from instances, inputs, dataframe_split and dataframe_records', () => {
    const a = Buffer.from([0xff, 0xd8, 0xff, 1, 2, 3]);
    const s = a.toString('base64');
    const bodies = [
      { instances: [s] },
      { instances: [{ b64: s }] },
      { inputs: [s] },
      { inputs: { image: [s] } },
      { dataframe_split: { columns: ['id', 'image'], data: [[7, s]] } },
      { dataframe_records: [{ image: s }] },
      { instances: [`data:image/jpeg;base64,${s}`] },
      { instances: [a.toString('base64url')] },
    ];
    for (const body of bodies) expect(invocationImages(body, 10).map((u) => u.bytes)).toEqual([a]);
    expect(() => invocationImages({ instances: [s], inputs: [s] }, 10)).toThrow(/one input key/);
    expect(() => invocationImages({ instances: [] }, 10)).toThrow(/no images/);
    expect(() => invocationImages({ instances: [1] }, 10)).toThrow(/base64-encoded image/);
    expect(() => invocationImages({ instances: Array(3).fill(s) }, 2)).toThrow(/at most 2/);
    expect(() => invocationImages([s], 10)).toThrow(/JSON object/);
  });
});
