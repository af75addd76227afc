import type { DatasetIndex, DuplicateGroup, ExcludedFile } from './indexer.js';

/** Min / median / max of a list of numbers. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** What `trt-flowers data stats` reports. */
export interface DataStats {
  root: string;
  total: number;
  checksum: string;
  classes: { name: string; label: number; count: number }[];
  formats: Record<string, number>;
  width: Spread;
  height: Spread;
  /** The most frequent sizes, "WxH", most common first. */
  commonSizes: { size: string; count: number }[];
  duplicates: DuplicateGroup[];
  /** Identical bytes under two classes. */
  conflicts: DuplicateGroup[];
  invalid: ExcludedFile[];
  ignored: ExcludedFile[];
}

function spread(values: number[]): Spread {
  if (values.length === 0) return { min: 0, median: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  return {
    min: sorted[0] as number,
    median: sorted[Math.floor(sorted.length / 2)] as number,
    max: sorted.at(-1) as number,
  };
}

/** Per-class counts, size distribution, formats, duplicates and excluded files of an index. */
export function computeStats(index: DatasetIndex, topSizes = 5): DataStats {
  const formats: Record<string, number> = {};
  const sizes = new Map<string, number>();
  for (const image of index.images) {
    formats[image.format] = (formats[image.format] ?? 0) + 1;
    const key = `${image.width}x${image.height}`;
    sizes.set(key, (sizes.get(key) ?? 0) + 1);
  }
  return {
    root: index.root,
    total: index.images.length,
    checksum: index.checksum,
    classes: index.classes.map((name, label) => ({
      name,
      label,
      count: index.images.filter((i) => i.label === label).length,
    })),
    formats,
    width: spread(index.images.map((i) => i.width)),
    height: spread(index.images.map((i) => i.height)),
    commonSizes: [...sizes]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, topSizes)
      .map(([size, count]) => ({ size, count })),
    duplicates: index.duplicates,
    conflicts: index.duplicates.filter((d) => d.conflict),
    invalid: index.invalid,
    ignored: index.ignored,
  };
}

/** A readable multi-line report of DataStats. */
export function formatStats(stats: DataStats): string {
  const width = Math.max(...stats.classes.map((c) => c.name.length), 5);
  const lines = [`data: ${stats.root}`, `images: ${stats.total} (md5 ${stats.checksum}.dir)`, ''];
  for (const c of stats.classes) lines.push(`  ${c.name.padEnd(width)}  ${String(c.count).padStart(6)}`);
  lines.push(
    '',
    `formats: ${Object.entries(stats.formats)
      .map(([f, n]) => `${f} ${n}`)
      .join(', ')}`,
    `width:  min ${stats.width.min}, median ${stats.width.median}, max ${stats.width.max}`,
    `height: min ${stats.height.min}, median ${stats.height.median}, max ${stats.height.max}`,
    `most common sizes: ${stats.commonSizes.map((s) => `${s.size} (${s.count})`).join(', ')}`,
  );
  const dupes = stats.duplicates.filter((d) => !d.conflict);
  lines.push('', `label conflicts (same bytes under two classes): ${stats.conflicts.length}`);
  for (const d of stats.conflicts) lines.push(`  ${d.paths.join(' = ')}`);
  lines.push(`duplicates within a class: ${dupes.length}`);
  for (const d of dupes) lines.push(`  ${d.paths.join(' = ')}`);
  lines.push(`invalid files (excluded): ${stats.invalid.length}`);
  for (const f of stats.invalid) lines.push(`  ${f.path}: ${f.reason}`);
  if (stats.ignored.length > 0) {
    lines.push(`ignored: ${stats.ignored.length}`);
    for (const f of stats.ignored.slice(0, 20)) lines.push(`  ${f.path}: ${f.reason}`);
  }
  return lines.join('\n');
}
