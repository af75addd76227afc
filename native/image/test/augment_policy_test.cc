// The augmentation policy's ops (data.augment.policy): each pixel op on small images whose result can be worked out
// by hand, the geometric ops' exact shifts and symmetries, the mean-colour fill, and the op names.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/test/check.h"
#include "image/augment.h"

namespace {

std::vector<uint8_t> flat(int size, uint8_t r, uint8_t g, uint8_t b) {
  std::vector<uint8_t> img(static_cast<size_t>(size) * size * 3);
  for (size_t i = 0; i < img.size(); i += 3) {
    img[i] = r;
    img[i + 1] = g;
    img[i + 2] = b;
  }
  return img;
}

// The augmented image's bytes back from the normalised output (mean 0, std 1/255: out = v).
std::vector<int> run(const std::vector<uint8_t>& src, int size, const tf::AugmentParams& p,
                     const double mean[3] = nullptr) {
  const double zero[3] = {0, 0, 0}, unit[3] = {1.0 / 255, 1.0 / 255, 1.0 / 255};
  std::vector<float> out(static_cast<size_t>(size) * size * 3);
  tf::augmentInto(src.data(), size, p, out.data(), mean ? mean : zero, unit);
  std::vector<int> hwc(out.size());
  const size_t plane = static_cast<size_t>(size) * size;
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c)
      hwc[i * 3 + c] = static_cast<int>(std::lround(out[c * plane + i] + (mean ? mean[c] * 255 : 0)));
  return hwc;
}

tf::AugmentParams identity(int size) {
  tf::AugmentParams p;
  p.width = size;
  p.height = size;
  return p;
}

}  // namespace

int main() {
  using tf::PolicyOp;
  // Posterize to 4 bits at magnitude 1, 6 bits at 0.5, untouched at 0.
  {
    std::vector<uint8_t> img = flat(2, 0x37, 0xff, 0x01);
    tf::applyPixelOp(img, 2, PolicyOp::Posterize, -1);
    CHECK(img[0] == 0x30 && img[1] == 0xf0 && img[2] == 0x00);
    img = flat(2, 0x37, 0xff, 0x01);
    tf::applyPixelOp(img, 2, PolicyOp::Posterize, 0.5);
    CHECK(img[0] == 0x34 && img[1] == 0xfc && img[2] == 0x00);
    img = flat(2, 0x37, 0xff, 0x01);
    tf::applyPixelOp(img, 2, PolicyOp::Posterize, 0);
    CHECK(img == flat(2, 0x37, 0xff, 0x01));
  }
  // Solarize: at 0.5 the threshold is 128, at 0 nothing changes.
  {
    std::vector<uint8_t> img = flat(2, 200, 100, 128);
    tf::applyPixelOp(img, 2, PolicyOp::Solarize, 0.5);
    CHECK(img[0] == 55 && img[1] == 100 && img[2] == 127);
    img = flat(2, 255, 0, 128);
    tf::applyPixelOp(img, 2, PolicyOp::Solarize, 0);
    CHECK(img == flat(2, 255, 0, 128));
  }
  // Brightness and colour factors 1 + 0.9 m.
  {
    std::vector<uint8_t> img = flat(2, 100, 200, 0);
    tf::applyPixelOp(img, 2, PolicyOp::Brightness, 0.5);
    CHECK(img[0] == 145 && img[1] == 255 && img[2] == 0);
    img = flat(2, 200, 100, 50);
    tf::applyPixelOp(img, 2, PolicyOp::Color, -1);  // grey 124: 124 + 0.1 (v - 124)
    CHECK(img[0] == 132 && img[1] == 122 && img[2] == 117);
  }
  // Contrast around the mean grey: half the pixels 0, half 200 (grey 0 and 200: mean 100) at factor 0.1.
  {
    std::vector<uint8_t> img = flat(2, 0, 0, 0);
    for (int i = 6; i < 12; i += 3) img[i] = img[i + 1] = img[i + 2] = 200;
    tf::applyPixelOp(img, 2, PolicyOp::Contrast, -1);
    // 100 + 0.1 * (0 - 100) = 90, 100 + 0.1 * (200 - 100) = 110.
    CHECK(img[0] == 90 && img[5] == 90 && img[6] == 110 && img[11] == 110);
  }
  // Autocontrast stretches each channel to 0..255 (truncating, as PIL), a flat channel stays.
  {
    std::vector<uint8_t> img = {50, 7, 9, 100, 7, 9, 150, 7, 9, 150, 7, 9};
    tf::applyPixelOp(img, 2, PolicyOp::AutoContrast, 0.3);
    CHECK(img[0] == 0 && img[3] == 127 && img[6] == 255 && img[1] == 7 && img[2] == 9);
  }
  // Equalize: 255 pixels at 10, 255 at 20, 274 at 30 (28 x 28): a step of 2, the levels to 0, 128, 255.
  {
    std::vector<uint8_t> img(28 * 28 * 3);
    for (size_t p = 0; p < 28 * 28; ++p) {
      const uint8_t v = p < 255 ? 10 : p < 510 ? 20 : 30;
      img[p * 3] = img[p * 3 + 1] = img[p * 3 + 2] = v;
    }
    tf::applyPixelOp(img, 28, PolicyOp::Equalize, 1);
    CHECK(img[0] == 0 && img[255 * 3] == 128 && img[600 * 3 + 2] == 255);
    std::vector<uint8_t> one = flat(4, 9, 9, 9);
    tf::applyPixelOp(one, 4, PolicyOp::Equalize, 1);
    CHECK(one == flat(4, 9, 9, 9));
  }
  // Sharpness: a flat image, or factor 1, is unchanged; at factor 1.9 a lone bright pixel gets brighter, its
  // neighbours darker, the border as it was.
  {
    std::vector<uint8_t> img = flat(5, 80, 80, 80);
    tf::applyPixelOp(img, 5, PolicyOp::Sharpness, 1);
    CHECK(img == flat(5, 80, 80, 80));
    std::vector<uint8_t> dot = flat(5, 80, 80, 80);
    const size_t centre = (2 * 5 + 2) * 3;
    dot[centre] = 160;
    std::vector<uint8_t> same = dot;
    tf::applyPixelOp(same, 5, PolicyOp::Sharpness, 0);
    CHECK(same == dot);
    tf::applyPixelOp(dot, 5, PolicyOp::Sharpness, 1);
    // smooth(centre) = (8 * 80 + 5 * 160) / 13 = 110.8 -> 111: 111 + 1.9 (160 - 111) = 204.1; a neighbour's smooth
    // (8 * 80 + 160 + 4 * 80... ) = (13 * 80 + 80) / 13 = 86.2 -> 86: 86 + 1.9 (80 - 86) = 74.6.
    CHECK(dot[centre] == 204);
    CHECK(dot[(2 * 5 + 1) * 3] == 75);
    CHECK(dot[0] == 80);
  }

  // Geometry. Translate by a third of the magnitude: 0.3 * 10 / 3 = 1 px exactly; the vacated column is the fill.
  const int n = 10;
  std::vector<uint8_t> ramp(n * n * 3);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      for (int c = 0; c < 3; ++c) ramp[(y * n + x) * 3 + c] = static_cast<uint8_t>(10 * x + y + 100 * (c == 1));
  {
    const double mean[3] = {0.2, 0.4, 0.6};  // fill 51, 102, 153
    tf::AugmentParams p = identity(n);
    p.op = PolicyOp::TranslateX;
    p.magnitude = 1.0 / 3;
    const auto out = run(ramp, n, p, mean);
    bool shifted = true;
    for (int y = 0; y < n; ++y) {
      shifted = shifted && out[(y * n) * 3] == 51 && out[(y * n) * 3 + 1] == 102 && out[(y * n) * 3 + 2] == 153;
      for (int x = 1; x < n; ++x)
        for (int c = 0; c < 3; ++c) shifted = shifted && out[(y * n + x) * 3 + c] == ramp[(y * n + x - 1) * 3 + c];
    }
    CHECK(shifted);
    p.op = PolicyOp::TranslateY;
    p.magnitude = -1.0 / 3;  // up by one row
    const auto up = run(ramp, n, p, mean);
    bool moved = true;
    for (int y = 0; y + 1 < n; ++y)
      for (int x = 0; x < n; ++x) moved = moved && up[(y * n + x) * 3] == ramp[((y + 1) * n + x) * 3];
    CHECK(moved && up[((n - 1) * n) * 3] == 51);
  }
  // A geometric op at magnitude 0 is the plain resample, value for value (the byte path through a no-op).
  {
    tf::AugmentParams p = identity(n);
    p.x = 1.3;
    p.y = 0.7;
    p.width = 7.5;
    p.height = 8.25;
    p.flip = true;
    tf::AugmentParams rotate = p, poster = p;
    rotate.op = PolicyOp::Rotate;
    poster.op = PolicyOp::Posterize;
    CHECK(run(ramp, n, rotate) == run(ramp, n, poster));
  }
  // Rotation commutes with the mirror up to the sign: rotating the flipped crop by +m is the mirror of rotating the
  // crop by -m. The middle row of an odd-sized image is fixed by a horizontal shear.
  {
    const int m = 11;
    std::vector<uint8_t> img(m * m * 3);
    std::srand(3);
    for (auto& v : img) v = static_cast<uint8_t>(std::rand() % 256);
    tf::AugmentParams a = identity(m), b = identity(m);
    a.op = b.op = PolicyOp::Rotate;
    a.magnitude = 0.7;
    a.flip = true;
    b.magnitude = -0.7;
    const auto ra = run(img, m, a), rb = run(img, m, b);
    int worst = 0;
    for (int y = 0; y < m; ++y)
      for (int x = 0; x < m; ++x)
        for (int c = 0; c < 3; ++c)
          worst = std::max(worst, std::abs(ra[(y * m + x) * 3 + c] - rb[(y * m + (m - 1 - x)) * 3 + c]));
    CHECK_MSG(worst <= 1, std::to_string(worst));
    CHECK(ra != run(img, m, identity(m)));
    tf::AugmentParams s = identity(m);
    s.op = PolicyOp::ShearX;
    s.magnitude = 0.9;
    const auto sheared = run(img, m, s), plain = run(img, m, identity(m));
    bool middle = true, moved = false;
    for (int x = 0; x < m; ++x)
      for (int c = 0; c < 3; ++c) {
        middle = middle && sheared[(5 * m + x) * 3 + c] == plain[(5 * m + x) * 3 + c];
        moved = moved || sheared[(0 * m + x) * 3 + c] != plain[(0 * m + x) * 3 + c];
      }
    CHECK(middle && moved);
  }
  // Names.
  CHECK(tf::policyOpFromName("shear_x") == PolicyOp::ShearX);
  CHECK(tf::policyOpFromName("identity") == PolicyOp::None);
  bool threw = false;
  try {
    tf::policyOpFromName("cutout");
  } catch (const tf::RangeError& e) {
    threw =
        std::string(e.what()).find("Unknown augmentation op 'cutout' (known: identity, rotate") != std::string::npos;
  }
  CHECK(threw);
  return tftest::finish("augment_policy_test");
}
