/**
 * Vega-Lite spec → SVG → PNG without a browser or canvas: vega-lite compiles, a headless vega View (renderer
 * 'none') writes the SVG, sharp (librsvg) rasterizes it. Text uses DejaVu Sans, which is installed here
 * (Debian's fonts-dejavu-core) and measured the same by every renderer.
 */
import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

import { writeFileAtomic } from '../util/fs.js';
import { SaveError } from '../errors.js';

export const PLOT_FONT = 'DejaVu Sans';

/** The files one chart was written to. */
export interface PlotFiles {
  svg: string;
  png: string;
  /** PNG size in pixels. */
  width: number;
  height: number;
}

export interface RenderOptions {
  /** PNG pixels per SVG unit (2 gives crisp text on high-DPI screens and in reports). Defaults to 2. */
  scale?: number;
}

/** Shared look: white background, DejaVu Sans, readable sizes. */
export const BASE_CONFIG = {
  background: 'white',
  padding: 16,
  font: PLOT_FONT,
  title: { fontSize: 16, anchor: 'start', offset: 12, subtitleFontSize: 12, subtitleColor: '#555' },
  axis: { labelFontSize: 12, titleFontSize: 13, titlePadding: 10, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 12, titleFontSize: 12, labelLimit: 240 },
  header: { labelFontSize: 13, labelFontWeight: 'bold' },
  view: { stroke: '#ccc' },
} as const;

/** Renders an SVG string from a Vega-Lite spec. */
export async function vegaLiteToSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  view.logLevel(vega.Error);
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes `<outBase>.svg` and `<outBase>.png` (atomically) from a Vega-Lite spec. Throws SaveError. */
export async function renderVegaLite(
  spec: TopLevelSpec,
  outBase: string,
  options: RenderOptions = {},
): Promise<PlotFiles> {
  const scale = options.scale ?? 2;
  if (!(scale > 0 && scale <= 8))
    throw new RangeError(`Expected a number in (0, 8] for \`scale\` but received ${scale}`);
  const svg = await vegaLiteToSvg(spec);
  const { data, info } = await sharp(Buffer.from(svg), { density: 72 * scale })
    .png({ compressionLevel: 9 })
    .toBuffer({ resolveWithObject: true });
  const files: PlotFiles = { svg: `${outBase}.svg`, png: `${outBase}.png`, width: info.width, height: info.height };
  try {
    await writeFileAtomic(files.svg, svg);
    await writeFileAtomic(files.png, data);
  } catch (err) {
    throw new SaveError(`cannot write plot ${outBase}: ${(err as Error).message}`, { cause: err });
  }
  return files;
}
