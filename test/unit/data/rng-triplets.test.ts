import { describe, expect, it } from 'vitest';

import { Rng } from '../../../src/data/rng.js';
import { sampleTriplets } from '../../../src/data/triplets.js';

const items = Array.from({ length: 60 }, (_, i) => ({ label: i % 3 === 0 ? 0 : i % 3 === 1 ? 1 : 2, md5: `m${i}` }));

describe('Rng', () => {
  it('repeats for the same seed and differs for another', () => {
    const a = Array.from(
      { length: 5 },
      (
        (r) => () =>
          r.next()
      )(new Rng(7, 'x')),
    );
    const b = Array.from(
      { length: 5 },
      (
        (r) => () =>
          r.next()
      )(new Rng(7, 'x')),
    );
    const c = Array.from(
      { length: 5 },
      (
        (r) => () =>
          r.next()
      )(new Rng(8, 'x')),
    );
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.every((v) => v >= 0 && v < 1)).toBe(true);
  });
});

describe('sampleTriplets', () => {
  it('uses every item once as a query, with a positive of its class and a negative of another', () => {
    const t = sampleTriplets(items, { seed: 1, epoch: 0 });
    expect(t.map((x) => x.query).sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
    for (const { query, positive, negative } of t) {
      expect(positive).not.toBe(query);
      expect(items[positive]?.label).toBe(items[query]?.label);
      expect(items[negative]?.label).not.toBe(items[query]?.label);
    }
  });

  it('gives the same triplets for the same seed and epoch, run after run', () => {
    expect(sampleTriplets(items, { seed: 3, epoch: 2 })).toEqual(sampleTriplets(items, { seed: 3, epoch: 2 }));
    expect(sampleTriplets(items, { seed: 3, epoch: 2 })).not.toEqual(sampleTriplets(items, { seed: 3, epoch: 3 }));
    expect(sampleTriplets(items, { seed: 3 })).not.toEqual(sampleTriplets(items, { seed: 4 }));
  });

  it('never pairs a query with a byte-identical positive when another choice exists', () => {
    const twins = [
      { label: 0, md5: 'same' },
      { label: 0, md5: 'same' },
      { label: 0, md5: 'other' },
      { label: 1, md5: 'n' },
    ];
    for (let epoch = 0; epoch < 20; epoch++) {
      for (const t of sampleTriplets(twins, { epoch })) {
        if (t.query < 2) expect(t.positive).toBe(2);
      }
    }
  });

  it('balances classes on request', () => {
    const skewed = [
      ...Array.from({ length: 90 }, () => ({ label: 0, md5: '' })),
      ...Array.from({ length: 10 }, () => ({ label: 1, md5: '' })),
    ].map((x, i) => ({ ...x, md5: `m${i}` }));
    const t = sampleTriplets(skewed, { balanced: true, seed: 5 });
    expect(t).toHaveLength(100);
    expect(t.filter((x) => skewed[x.query]?.label === 1)).toHaveLength(50);
  });

  it('needs two classes', () => {
    expect(() => sampleTriplets([{ label: 0, md5: 'a' }])).toThrow(RangeError);
  });
});
