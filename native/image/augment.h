// Training-time augmentation of one decoded image: the native twin of src/data/augment.ts augmentInto (same
// arithmetic, in the same order, in double precision), so the data pipeline can run it off the event loop.
#pragma once

#include <cstdint>

namespace tf {

struct AugmentParams {
  double x = 0, y = 0, width = 0, height = 0;  // crop box in source pixels
  bool flip = false;
  double brightness = 1, contrast = 1, saturation = 1;
};

// src: size*size*3 RGB bytes (HWC). Writes the crop resampled back to size*size (bilinear), flipped, with brightness,
// contrast around the mean grey and saturation around each pixel's grey, normalised ((v / 255 - mean) / std), CHW,
// into out[0 .. 3*size*size).
void augmentInto(const uint8_t* src, int size, const AugmentParams& p, float* out, const double mean[3],
                 const double std[3]);

}  // namespace tf
