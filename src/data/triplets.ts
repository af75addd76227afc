import { Rng } from './rng.js';
import type { SplitItem } from './split.js';

/** Indices into the item list: a query, a positive of its class and a negative of another class. */
export interface Triplet {
  query: number;
  positive: number;
  negative: number;
}

/** Options of sampleTriplets. */
export interface TripletOptions {
  /** Base seed; the epoch number is mixed in. Defaults to 42. */
  seed?: number;
  /** Epoch number (0-based): each epoch has its own order and pairs. Defaults to 0. */
  epoch?: number;
  /**
   * Class-balanced sampling: queries are drawn so every class is equally frequent (with replacement), and negatives
   * pick their class uniformly. Otherwise every item is a query exactly once and negatives follow class frequency.
   * Defaults to false.
   */
  balanced?: boolean;
  /** Name of the random stream: another name gives other triplets for the same seed and epoch. Defaults to 'triplets'. */
  stream?: string;
}

/**
 * One epoch of triplets over `items`. Without balancing, every item is a query once, in a seeded shuffled order.
 * A positive is never the query itself nor a byte-identical copy of it (when another choice exists).
 * Same items + same options = same triplets.
 */
export function sampleTriplets(
  items: readonly Pick<SplitItem, 'label' | 'md5'>[],
  options: TripletOptions = {},
): Triplet[] {
  const rng = new Rng(options.seed ?? 42, options.stream ?? 'triplets', options.epoch ?? 0);
  const byClass = new Map<number, number[]>();
  items.forEach((item, i) => {
    const list = byClass.get(item.label);
    if (list) list.push(i);
    else byClass.set(item.label, [i]);
  });
  const labels = [...byClass.keys()].sort((a, b) => a - b);
  if (labels.length < 2) throw new RangeError(`triplets need at least two classes, got ${labels.length}`);
  let queries: number[];
  if (options.balanced) {
    queries = Array.from({ length: items.length }, (_, i) => {
      const members = byClass.get(labels[i % labels.length] as number) as number[];
      return members[rng.int(members.length)] as number;
    });
    rng.shuffle(queries);
  } else {
    queries = rng.shuffle(items.map((_, i) => i));
  }
  return queries.map((query) => {
    const q = items[query] as Pick<SplitItem, 'label' | 'md5'>;
    const same = byClass.get(q.label) as number[];
    let positive = query;
    for (let attempt = 0; attempt < 16 && same.length > 1; attempt++) {
      positive = same[rng.int(same.length)] as number;
      if (positive !== query && (items[positive] as SplitItem).md5 !== q.md5) break;
    }
    let negative: number;
    if (options.balanced) {
      const others = labels.filter((l) => l !== q.label);
      const members = byClass.get(others[rng.int(others.length)] as number) as number[];
      negative = members[rng.int(members.length)] as number;
    } else {
      const outside = items.length - same.length;
      let k = rng.int(outside);
      negative = -1;
      for (const label of labels) {
        if (label === q.label) continue;
        const members = byClass.get(label) as number[];
        if (k < members.length) {
          negative = members[k] as number;
          break;
        }
        k -= members.length;
      }
    }
    return { query, positive, negative };
  });
}
