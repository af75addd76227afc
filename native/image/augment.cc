#include "augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

// No fused multiply-adds: the results must match the TypeScript implementation value for value.
#pragma STDC FP_CONTRACT OFF

namespace tf {

namespace {
inline double clamp255(double v) { return v < 0 ? 0 : v > 255 ? 255 : v; }
}  // namespace

void augmentInto(const uint8_t* src, int size, const AugmentParams& p, float* out, const double mean[3],
                 const double std[3]) {
  const int64_t plane = static_cast<int64_t>(size) * size;
  double grey = 0;
  for (int64_t i = 0; i < plane * 3; i += 3) {
    grey += 0.299 * src[i] + 0.587 * src[i + 1] + 0.114 * src[i + 2];
  }
  const double bf = p.brightness, cf = p.contrast, sf = p.saturation;
  const double meanGrey = (grey / static_cast<double>(plane)) * bf;
  const double scaleX = p.width / size;
  const double scaleY = p.height / size;
  std::vector<int32_t> xa(size), xb(size);
  std::vector<float> xf(size);  // a Float32Array on the TypeScript side
  for (int ox = 0; ox < size; ++ox) {
    const int tx = p.flip ? size - 1 - ox : ox;
    const double sx = std::min<double>(size - 1, std::max<double>(0, p.x + (tx + 0.5) * scaleX - 0.5));
    const double x0 = std::floor(sx);
    xa[ox] = static_cast<int32_t>(x0) * 3;
    xb[ox] = std::min(size - 1, static_cast<int32_t>(x0) + 1) * 3;
    xf[ox] = static_cast<float>(sx - x0);
  }
  double k[3], m[3];
  for (int ch = 0; ch < 3; ++ch) {
    k[ch] = 1 / (255 * std[ch]);
    m[ch] = mean[ch] / std[ch];
  }
  float* o0 = out;
  float* o1 = out + plane;
  float* o2 = out + 2 * plane;
  for (int oy = 0; oy < size; ++oy) {
    const double sy = std::min<double>(size - 1, std::max<double>(0, p.y + (oy + 0.5) * scaleY - 0.5));
    const double y0 = std::floor(sy);
    const int64_t row0 = static_cast<int64_t>(y0) * size * 3;
    const int64_t row1 = static_cast<int64_t>(std::min(size - 1, static_cast<int>(y0) + 1)) * size * 3;
    const double fy = sy - y0;
    for (int ox = 0; ox < size; ++ox) {
      const double fx = xf[ox];
      const int64_t a = row0 + xa[ox], b = row0 + xb[ox], c = row1 + xa[ox], d = row1 + xb[ox];
      const double w00 = (1 - fx) * (1 - fy);
      const double w01 = fx * (1 - fy);
      const double w10 = (1 - fx) * fy;
      const double w11 = fx * fy;
      double r = (src[a] * w00 + src[b] * w01 + src[c] * w10 + src[d] * w11) * bf;
      double g = (src[a + 1] * w00 + src[b + 1] * w01 + src[c + 1] * w10 + src[d + 1] * w11) * bf;
      double bl = (src[a + 2] * w00 + src[b + 2] * w01 + src[c + 2] * w10 + src[d + 2] * w11) * bf;
      r = (clamp255(r) - meanGrey) * cf + meanGrey;
      g = (clamp255(g) - meanGrey) * cf + meanGrey;
      bl = (clamp255(bl) - meanGrey) * cf + meanGrey;
      r = clamp255(r);
      g = clamp255(g);
      bl = clamp255(bl);
      const double pg = 0.299 * r + 0.587 * g + 0.114 * bl;
      const int64_t i = static_cast<int64_t>(oy) * size + ox;
      o0[i] = static_cast<float>(clamp255((r - pg) * sf + pg) * k[0] - m[0]);
      o1[i] = static_cast<float>(clamp255((g - pg) * sf + pg) * k[1] - m[1]);
      o2[i] = static_cast<float>(clamp255((bl - pg) * sf + pg) * k[2] - m[2]);
    }
  }
}

}  // namespace tf
