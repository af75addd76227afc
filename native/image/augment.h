// Training-time augmentation of one decoded image: the native twin of src/data/augment.ts augmentInto (same
// arithmetic, in the same order, in double precision), so the data pipeline can run it off the event loop.
#pragma once

#include <cstdint>

namespace tf {

struct AugmentParams {
  double x = 0, y = 0, width = 0, height = 0;  // crop box in source pixels
  bool flip = false;
  double brightness = 1, contrast = 1, saturation = 1;
  // Real-world degradations, applied to the resampled crop before the colour jitter (none at their defaults):
  double downscale = 1;  // in (0, 1]: shrunk to round(size * downscale) px (area average), then bilinear back up
  int jpegQuality = 0;   // 1..100: JPEG-compressed at this quality and decoded again; 0: not
  // Random erasing, after the normalisation: this box of the output (output pixels) set to 0, the mean colour.
  int eraseX = 0, eraseY = 0, eraseWidth = 0, eraseHeight = 0;
};

// src: size*size*3 RGB bytes (HWC). Writes the crop resampled back to size*size (bilinear), flipped, with brightness,
// contrast around the mean grey and saturation around each pixel's grey, normalised ((v / 255 - mean) / std), CHW,
// into out[0 .. 3*size*size). With a downscale below 1 or a JPEG quality, the crop is first resampled to bytes
// (rounded), degraded, and then jittered and normalised; otherwise all in one pass, as before those existed.
void augmentInto(const uint8_t* src, int size, const AugmentParams& p, float* out, const double mean[3],
                 const double std[3]);

}  // namespace tf
