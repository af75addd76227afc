/** Options of DecodedCache. */
export interface DecodedCacheOptions {
  /** Memory bound in bytes; least recently used images are dropped beyond it (0 disables the cache). Defaults to 1 GiB. */
  maxBytes?: number;
}

/**
 * In-memory LRU of decoded, resized uint8 images, keyed by content (md5) and decode settings, so after the first
 * epoch no photo is decoded again while the data fits the bound. Concurrent requests for one key share one decode.
 */
export class DecodedCache {
  readonly maxBytes: number;
  readonly #entries = new Map<string, Uint8Array>();
  readonly #pending = new Map<string, Promise<Uint8Array>>();
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(options: DecodedCacheOptions = {}) {
    this.maxBytes = Math.max(0, options.maxBytes ?? 1024 * 1024 * 1024);
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of images held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached image for `key`, or the result of `decode()` (stored when it fits). */
  async get(key: string, decode: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const hit = this.#entries.get(key);
    if (hit) {
      this.hits++;
      this.#entries.delete(key); // re-insert: Map order is the recency order
      this.#entries.set(key, hit);
      return hit;
    }
    const pending = this.#pending.get(key);
    if (pending) return pending;
    this.misses++;
    const job = decode().finally(() => this.#pending.delete(key));
    this.#pending.set(key, job);
    const value = await job;
    this.#store(key, value);
    return value;
  }

  #store(key: string, value: Uint8Array): void {
    if (value.byteLength > this.maxBytes || this.#entries.has(key)) return;
    while (this.#bytes + value.byteLength > this.maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#bytes -= (this.#entries.get(oldest.value) as Uint8Array).byteLength;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, value);
    this.#bytes += value.byteLength;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
