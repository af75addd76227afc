// resizeRgb: the SIMD row loops give the same pixels as the scalar ones, over random images of many sizes, both
// modes, grey and RGB, shrinking and enlarging; a second call of a geometry (its taps cached) gives the same pixels;
// a flat image stays flat.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/test/check.h"
#include "image/image_resize.h"

int main() {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  const int sizes[] = {1, 7, 64, 160, 224};
  const int dims[] = {1, 2, 3, 5, 31, 160, 213, 224, 240, 333, 500, 777};
  int cases = 0;
  for (const int size : sizes) {
    for (const int w : dims) {
      for (const int h : dims) {
        if ((w * 31 + h * 7 + size) % 3 != 0) continue;  // a third of the grid keeps the test fast
        for (const int channels : {1, 3}) {
          for (const auto mode : {tf::ResizeMode::Fill, tf::ResizeMode::CenterCrop}) {
            const int stride = w + (w % 4);  // rows with and without padding
            std::vector<uint8_t> src(static_cast<size_t>(stride) * h * channels);
            for (auto& v : src) v = static_cast<uint8_t>(byte(rng));
            tf::detail::scalarResizeForTesting = true;
            const auto scalar = tf::resizeRgb(src.data(), channels, stride, w, h, size, mode);
            tf::detail::scalarResizeForTesting = false;
            const auto simd = tf::resizeRgb(src.data(), channels, stride, w, h, size, mode);
            const auto again = tf::resizeRgb(src.data(), channels, stride, w, h, size, mode);
            const std::string what = std::to_string(w) + "x" + std::to_string(h) + "x" + std::to_string(channels) +
                                     " -> " + std::to_string(size) +
                                     (mode == tf::ResizeMode::Fill ? " fill" : " center-crop");
            CHECK_MSG(simd == scalar, what);
            CHECK_MSG(again == simd, what);
            ++cases;
          }
        }
      }
    }
  }
  CHECK(cases > 100);
  // A flat image stays flat through every path.
  std::vector<uint8_t> flat(500 * 333 * 3, 77);
  const auto out = tf::resizeRgb(flat.data(), 3, 500, 500, 333, 224, tf::ResizeMode::Fill);
  bool allFlat = true;
  for (const uint8_t v : out) allFlat = allFlat && v == 77;
  CHECK(allFlat);
  return tftest::finish("resize_test");
}
