// Test-time augmentation modes, apart from Engine so that the CLI's option parsing loads none of its packages.

/**
 * Test-time augmentation: none, the image and its left-right mirror averaged ('flip', 2 runs), or the image and five
 * zoomed crops of it averaged ('crops', 6 runs: TTA_CROP_FRACTION of the side at the centre and the four corners).
 */
export type TtaMode = 'none' | 'flip' | 'crops';
export const TTA_MODES: readonly TtaMode[] = ['none', 'flip', 'crops'];
/** The side of each 'crops' view, as a fraction of the input's side. */
export const TTA_CROP_FRACTION = 0.875;
