import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const fixturesDir = join(repoRoot, 'test', '.fixtures');
export const tinyModelPath = join(fixturesDir, 'tiny.pt');

/** The real tf_flowers photos: TRT_FLOWERS_DATA, else ../shared/data/flower_photos beside the repo. */
export const flowerDir = process.env.TRT_FLOWERS_DATA ?? resolve(repoRoot, '..', 'shared', 'data', 'flower_photos');
export const hasFlowers = existsSync(join(flowerDir, 'daisy'));
// Off CI, tests that need the photos skip without them; on CI a missing photo folder fails the run, so that a
// green run always means the photo tests ran.
if (!hasFlowers && process.env.CI === 'true') {
  throw new Error(`CI=true but the tf_flowers photos are missing at '${flowerDir}' (set TRT_FLOWERS_DATA)`);
}
export const CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'] as const;

/** The first `n` photos (sorted by name) of a class. */
export function photos(cls: string, n: number, skip = 0): string[] {
  return readdirSync(join(flowerDir, cls))
    .filter((f) => /\.jpe?g$/i.test(f))
    .sort()
    .slice(skip, skip + n)
    .map((f) => join(flowerDir, cls, f));
}

/** Copies the first `perClass` photos of every class into `dir`/<class>/ (a small real data set). */
export function photoFolder(dir: string, perClass: number): void {
  for (const c of CLASSES) {
    mkdirSync(join(dir, c), { recursive: true });
    for (const f of photos(c, perClass)) copyFileSync(f, join(dir, c, basename(f)));
  }
}

/** Counts 1 ms timer ticks while `work` runs; returns the count and the elapsed milliseconds. */
export async function ticksDuring(work: () => Promise<unknown>): Promise<{ ticks: number; ms: number }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const start = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return { ticks, ms: performance.now() - start };
}
