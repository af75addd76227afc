#include "normalize.h"

namespace tf {

void normalizeHwcToChw(const uint8_t* hwc, size_t pixels, float* out, const double mean[3], const double stdev[3]) {
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) lut[c][v] = static_cast<float>((v / 255.0 - mean[c]) / stdev[c]);
  }
  float* r = out;
  float* g = out + pixels;
  float* b = out + 2 * pixels;
  for (size_t i = 0; i < pixels; ++i, hwc += 3) {
    r[i] = lut[0][hwc[0]];
    g[i] = lut[1][hwc[1]];
    b[i] = lut[2][hwc[2]];
  }
}

}  // namespace tf
