// HWC uint8 RGB to normalised planar (CHW) float32: (v / 255 - mean[c]) / std[c], through one 256-entry table per
// channel computed in double and rounded once to float, so the values are bit-identical to the TypeScript
// normalizeInto (src/data/preprocess.ts).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tf {

void normalizeHwcToChw(const uint8_t* hwc, size_t pixels, float* out, const double mean[3], const double stdev[3]);

}  // namespace tf
