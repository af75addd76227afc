#include "jpeg_metadata.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tf {
namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
uint32_t be16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | uint32_t{p[1]}; }

// The sRGB tone curve (encoded value to linear light), what an sRGB profile's TRC tags must hold.
double srgbToLinear(double v) { return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4); }

// Evaluates an ICC 'curv' or 'para' tone curve at v in [0, 1]; returns false for anything else or a short tag.
bool evalCurve(const uint8_t* tag, size_t len, double v, double* out) {
  if (len < 12) return false;
  if (std::memcmp(tag, "curv", 4) == 0) {
    const uint32_t n = be32(tag + 8);
    if (n < 2 || n > (len - 12) / 2) return false;  // 0 = identity, 1 = pure gamma: neither is sRGB
    const double pos = v * (n - 1);
    const uint32_t i = std::min<uint32_t>(static_cast<uint32_t>(pos), n - 2);
    const double a = be16(tag + 12 + 2 * i) / 65535.0;
    const double b = be16(tag + 12 + 2 * (i + 1)) / 65535.0;
    *out = a + (b - a) * (pos - i);
    return true;
  }
  if (std::memcmp(tag, "para", 4) == 0) {
    static const int kParams[] = {1, 3, 4, 5, 7};
    const uint32_t type = be16(tag + 8);
    if (type > 4 || len < 12 + 4 * static_cast<size_t>(kParams[type])) return false;
    double p[7] = {0, 1, 0, 0, 0, 0, 0};
    for (int k = 0; k < kParams[type]; ++k) p[k] = static_cast<int32_t>(be32(tag + 12 + 4 * k)) / 65536.0;
    const double g = p[0], a = p[1], b = p[2], c = p[3], d = p[4], e = p[5], f = p[6];
    const auto pw = [&](double x) { return x > 0 ? std::pow(x, g) : 0.0; };
    switch (type) {
      case 0:
        *out = pw(v);
        break;
      case 1:
        *out = v >= -b / a ? pw(a * v + b) : 0;
        break;
      case 2:
        *out = v >= -b / a ? pw(a * v + b) + c : c;
        break;
      case 3:
        *out = v >= d ? pw(a * v + b) : c * v;
        break;
      default:
        *out = v >= d ? pw(a * v + b) + e : c * v + f;
    }
    return std::isfinite(*out);
  }
  return false;
}

}  // namespace

int exifOrientation(const uint8_t* app1, size_t length) {
  if (app1 == nullptr || length < 6 + 8 || std::memcmp(app1, "Exif\0\0", 6) != 0) return 1;
  const uint8_t* t = app1 + 6;
  const size_t n = length - 6;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') {
    le = true;
  } else if (t[0] == 'M' && t[1] == 'M') {
    le = false;
  } else {
    return 1;
  }
  const auto u16 = [&](size_t o) -> uint32_t { return le ? t[o] | (t[o + 1] << 8) : (t[o] << 8) | t[o + 1]; };
  const auto u32 = [&](size_t o) -> uint32_t { return le ? u16(o) | (u16(o + 2) << 16) : (u16(o) << 16) | u16(o + 2); };
  if (u16(2) != 42) return 1;
  const uint64_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  const uint32_t entries = u16(ifd);
  for (uint32_t i = 0; i < entries; ++i) {
    const uint64_t e = ifd + 2 + 12ull * i;
    if (e + 12 > n) break;
    if (u16(e) != 0x0112) continue;
    const uint32_t v = u16(e + 2) == 3 ? u16(e + 8) : 1;  // type SHORT
    return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
  }
  return 1;
}

bool iccIsSrgb(const uint8_t* icc, size_t n) {
  if (icc == nullptr || n < 132 || std::memcmp(icc + 16, "RGB ", 4) != 0) return false;
  const uint32_t count = be32(icc + 128);
  if (count > (n - 132) / 12) return false;
  const auto find = [&](const char* sig, const uint8_t** tag, size_t* len) {
    for (uint32_t i = 0; i < count; ++i) {
      const uint8_t* e = icc + 132 + 12 * i;
      if (std::memcmp(e, sig, 4) != 0) continue;
      const uint64_t off = be32(e + 4), size = be32(e + 8);
      if (off + size > n) return false;
      *tag = icc + off;
      *len = size;
      return true;
    }
    return false;
  };
  const uint8_t* tag = nullptr;
  size_t len = 0;
  // A colour management module prefers a LUT over the matrix/TRC tags when there is one: not checked here.
  for (const char* lut : {"A2B0", "A2B1", "A2B2", "D2B0"}) {
    if (find(lut, &tag, &len)) return false;
  }
  // sRGB's primaries adapted to D50, as every sRGB v2/v4 profile stores them.
  static const double kPrimaries[3][3] = {{0.4361, 0.2225, 0.0139}, {0.3851, 0.7169, 0.0971}, {0.1431, 0.0606, 0.7141}};
  static const char* const kXyz[3] = {"rXYZ", "gXYZ", "bXYZ"};
  static const char* const kTrc[3] = {"rTRC", "gTRC", "bTRC"};
  for (int c = 0; c < 3; ++c) {
    if (!find(kXyz[c], &tag, &len) || len < 20 || std::memcmp(tag, "XYZ ", 4) != 0) return false;
    for (int k = 0; k < 3; ++k) {
      const double v = static_cast<int32_t>(be32(tag + 8 + 4 * k)) / 65536.0;
      if (std::fabs(v - kPrimaries[c][k]) > 0.003) return false;
    }
    if (!find(kTrc[c], &tag, &len)) return false;
    for (int s = 1; s < 32; ++s) {
      const double v = s / 32.0;
      double y = 0;
      // 0.002 in linear light: a plain gamma 2.2 curve differs from sRGB's by up to 0.004.
      if (!evalCurve(tag, len, v, &y) || std::fabs(y - srgbToLinear(v)) > 0.002) return false;
    }
  }
  return true;
}

}  // namespace tf
