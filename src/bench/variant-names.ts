/**
 * The names of the robustness report's photo variants and what each does (no image library here: --help prints
 * them). The variants themselves are made in variants.ts.
 */
import { closestKey } from '../util/schema.js';

export const ROBUSTNESS_VARIANTS = ['original', 'downscale-240', 'jpeg-q50', 'center-crop-70', 'rotate-10'] as const;

/** One way of changing the photos of the split. */
export type RobustnessVariant = (typeof ROBUSTNESS_VARIANTS)[number];

/** JPEG quality of every variant that is not about JPEG quality itself: high, so it adds next to no artefacts. */
export const VARIANT_JPEG_QUALITY = 95;

/** What each variant does to a photo, for --help and the reports. */
export const VARIANT_DESCRIPTIONS: Record<RobustnessVariant, string> = {
  original: 'the photo file as it is (decoded by the engine like any input)',
  'downscale-240': `at most 240 px wide, aspect ratio kept (Lanczos 3), re-encoded as JPEG quality ${VARIANT_JPEG_QUALITY}`,
  'jpeg-q50': 'decoded and re-encoded as JPEG quality 50 (4:2:0 chroma), same size',
  'center-crop-70': `the central 70% of the width and of the height, re-encoded as JPEG quality ${VARIANT_JPEG_QUALITY}`,
  'rotate-10':
    '10 degrees clockwise (bilinear), then cropped to the largest upright rectangle inside the rotated photo (no ' +
    `filled corners), re-encoded as JPEG quality ${VARIANT_JPEG_QUALITY}`,
};

/**
 * Checks a list of variant names: each known, each once, at least one. Throws RangeError naming the unknown one and
 * the closest known name.
 */
export function parseVariants(names: readonly string[]): RobustnessVariant[] {
  const known = ROBUSTNESS_VARIANTS as readonly string[];
  if (names.length === 0) {
    throw new RangeError(`Expected at least one variant of ${known.join(', ')} for \`variants\` but received none`);
  }
  for (const n of names) {
    if (!known.includes(n)) {
      const hint = closestKey(n, known);
      throw new RangeError(
        `Unknown variant '${n}'${hint ? ` (did you mean '${hint}'?)` : ''}; known variants: ${known.join(', ')}`,
      );
    }
  }
  return [...new Set(names)] as RobustnessVariant[];
}
