#include "augment.h"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/errors.h"
#include "jpeg_decoder.h"

#ifdef TF_WITH_JPEG
#include <cstdio>  // jpeglib.h uses FILE

#include <jpeglib.h>
#endif

// No fused multiply-adds: the results must match the TypeScript implementation value for value.
#pragma STDC FP_CONTRACT OFF

namespace tf {

namespace {
inline double clamp255(double v) { return v < 0 ? 0 : v > 255 ? 255 : v; }
inline uint8_t toByte(double v) { return static_cast<uint8_t>(std::lround(clamp255(v))); }

// A w x h RGB image resized to tw x th: area average when shrinking, bilinear (pixel centres) when growing.
std::vector<uint8_t> resizeRgb(const std::vector<uint8_t>& img, int w, int h, int tw, int th) {
  std::vector<uint8_t> out(static_cast<size_t>(tw) * th * 3);
  if (tw <= w && th <= h) {
    const double sx = static_cast<double>(w) / tw, sy = static_cast<double>(h) / th;
    for (int oy = 0; oy < th; ++oy) {
      const double y0 = oy * sy, y1 = (oy + 1) * sy;
      for (int ox = 0; ox < tw; ++ox) {
        const double x0 = ox * sx, x1 = (ox + 1) * sx;
        double acc[3] = {0, 0, 0}, area = 0;
        for (int iy = static_cast<int>(std::floor(y0)); iy < std::min(h, static_cast<int>(std::ceil(y1))); ++iy) {
          const double wy = std::min<double>(iy + 1, y1) - std::max<double>(iy, y0);
          for (int ix = static_cast<int>(std::floor(x0)); ix < std::min(w, static_cast<int>(std::ceil(x1))); ++ix) {
            const double wgt = wy * (std::min<double>(ix + 1, x1) - std::max<double>(ix, x0));
            for (int c = 0; c < 3; ++c) acc[c] += wgt * img[(static_cast<size_t>(iy) * w + ix) * 3 + c];
            area += wgt;
          }
        }
        for (int c = 0; c < 3; ++c) out[(static_cast<size_t>(oy) * tw + ox) * 3 + c] = toByte(acc[c] / area);
      }
    }
    return out;
  }
  for (int oy = 0; oy < th; ++oy) {
    const double sy = std::min<double>(h - 1, std::max<double>(0, (oy + 0.5) * h / th - 0.5));
    const int y0 = static_cast<int>(sy), y1 = std::min(h - 1, y0 + 1);
    const double fy = sy - y0;
    for (int ox = 0; ox < tw; ++ox) {
      const double sx = std::min<double>(w - 1, std::max<double>(0, (ox + 0.5) * w / tw - 0.5));
      const int x0 = static_cast<int>(sx), x1 = std::min(w - 1, x0 + 1);
      const double fx = sx - x0;
      for (int c = 0; c < 3; ++c) {
        const auto px = [&](int y, int x) {
          return static_cast<double>(img[(static_cast<size_t>(y) * w + x) * 3 + c]);
        };
        const double v =
            (px(y0, x0) * (1 - fx) + px(y0, x1) * fx) * (1 - fy) + (px(y1, x0) * (1 - fx) + px(y1, x1) * fx) * fy;
        out[(static_cast<size_t>(oy) * tw + ox) * 3 + c] = toByte(v);
      }
    }
  }
  return out;
}

#ifdef TF_WITH_JPEG
struct JpegError {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
};
[[noreturn]] void jpegErrorExit(j_common_ptr cinfo) { std::longjmp(reinterpret_cast<JpegError*>(cinfo->err)->jump, 1); }
#endif

// Encodes size x size RGB at `quality` (4:2:0, as most cameras and web photos) and decodes it back with the
// preprocessing decoder (decodeJpegResized, at the same size).
void jpegRoundTrip(std::vector<uint8_t>& img, int size, int quality) {
#ifdef TF_WITH_JPEG
  unsigned char* encoded = nullptr;
  unsigned long encodedSize = 0;
  bool ok = false;
  jpeg_compress_struct c{};
  JpegError err{};
  c.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpegErrorExit;
  if (setjmp(err.jump) == 0) {
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &encoded, &encodedSize);
    c.image_width = static_cast<JDIMENSION>(size);
    c.image_height = static_cast<JDIMENSION>(size);
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
      JSAMPROW row = img.data() + static_cast<size_t>(c.next_scanline) * size * 3;
      jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    ok = true;
  }
  jpeg_destroy_compress(&c);
  if (!ok) {
    std::free(encoded);
    throw std::runtime_error("JPEG augmentation: libjpeg could not encode a " + std::to_string(size) + " px image");
  }
  JpegDecodeOptions options;
  options.size = size;
  try {
    img = decodeJpegResized(encoded, encodedSize, options);
  } catch (...) {
    std::free(encoded);
    throw;
  }
  std::free(encoded);
#else
  (void)img;
  (void)size;
  (void)quality;
  throw DeviceUnavailableError(
      "JPEG augmentation needs libjpeg: this addon was built without it (apt-get install "
      "libjpeg62-turbo-dev, then npm run build:native)");
#endif
}

// The crop box resampled (bilinear, flipped) to size x size bytes, the same taps as the one-pass path, through the
// inverse of a geometric policy op's affine map around the image centre (the identity for every other op): output
// pixel centre -> point of the (flipped) crop -> source. Points outside the crop are `fill`.
std::vector<uint8_t> resampleCrop(const uint8_t* src, int size, const AugmentParams& p, const uint8_t fill[3]) {
  std::vector<uint8_t> out(static_cast<size_t>(size) * size * 3);
  const double m = std::clamp(p.magnitude, -1.0, 1.0);
  const double c = size / 2.0;
  // q = A (o - c) + c + t, with A the inverse map's matrix.
  double a00 = 1, a01 = 0, a10 = 0, a11 = 1, tx = 0, ty = 0;
  switch (p.op) {
    case PolicyOp::Rotate: {
      const double theta = m * kPolicyRotateDegrees * 3.14159265358979323846 / 180;
      a00 = std::cos(theta);
      a01 = -std::sin(theta);
      a10 = std::sin(theta);
      a11 = std::cos(theta);
      break;
    }
    case PolicyOp::ShearX:
      a01 = m * kPolicyShear;
      break;
    case PolicyOp::ShearY:
      a10 = m * kPolicyShear;
      break;
    case PolicyOp::TranslateX:
      tx = -m * kPolicyTranslate * size;
      break;
    case PolicyOp::TranslateY:
      ty = -m * kPolicyTranslate * size;
      break;
    default:
      break;
  }
  const double scaleX = p.width / size, scaleY = p.height / size;
  for (int oy = 0; oy < size; ++oy) {
    for (int ox = 0; ox < size; ++ox) {
      const double dx = ox + 0.5 - c, dy = oy + 0.5 - c;
      double qx = a00 * dx + a01 * dy + c + tx;
      const double qy = a10 * dx + a11 * dy + c + ty;
      uint8_t* o = &out[(static_cast<size_t>(oy) * size + ox) * 3];
      if (qx < 0 || qx >= size || qy < 0 || qy >= size) {
        o[0] = fill[0];
        o[1] = fill[1];
        o[2] = fill[2];
        continue;
      }
      if (p.flip) qx = size - qx;
      const double sx = std::min<double>(size - 1, std::max<double>(0, p.x + qx * scaleX - 0.5));
      const double sy = std::min<double>(size - 1, std::max<double>(0, p.y + qy * scaleY - 0.5));
      const int x0 = static_cast<int>(std::floor(sx)), y0 = static_cast<int>(std::floor(sy));
      const int x1 = std::min(size - 1, x0 + 1), y1 = std::min(size - 1, y0 + 1);
      const double fx = sx - x0, fy = sy - y0;
      for (int ch = 0; ch < 3; ++ch) {
        const auto px = [&](int y, int x) {
          return static_cast<double>(src[(static_cast<int64_t>(y) * size + x) * 3 + ch]);
        };
        o[ch] = toByte((px(y0, x0) * (1 - fx) + px(y0, x1) * fx) * (1 - fy) +
                       (px(y1, x0) * (1 - fx) + px(y1, x1) * fx) * fy);
      }
    }
  }
  return out;
}

// PIL's luminance of one pixel (ITU-R 601-2), rounded.
inline double luma(const uint8_t* px) { return std::round(0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]); }

// ImageEnhance's blend: degenerate + (image - degenerate) * factor, clamped and rounded.
inline uint8_t blend(double degenerate, double v, double factor) {
  return toByte(degenerate + (v - degenerate) * factor);
}

void equalizeChannel(std::vector<uint8_t>& img, int ch) {
  // ImageOps.equalize: a step of (pixels - the last used level's count) / 255, the lookup table from the running
  // count; an image of one level, or a step of 0, stays as it is.
  int64_t hist[256] = {0};
  for (size_t i = ch; i < img.size(); i += 3) ++hist[img[i]];
  int64_t total = 0, last = 0, used = 0;
  for (int i = 0; i < 256; ++i) {
    if (hist[i] == 0) continue;
    total += hist[i];
    last = hist[i];
    ++used;
  }
  if (used <= 1) return;
  const int64_t step = (total - last) / 255;
  if (step == 0) return;
  uint8_t lut[256];
  int64_t n = step / 2;
  for (int i = 0; i < 256; ++i) {
    lut[i] = static_cast<uint8_t>(std::min<int64_t>(255, n / step));
    n += hist[i];
  }
  for (size_t i = ch; i < img.size(); i += 3) img[i] = lut[img[i]];
}

void eraseBox(int size, const AugmentParams& p, float* out) {
  if (p.eraseWidth <= 0 || p.eraseHeight <= 0) return;
  const int64_t plane = static_cast<int64_t>(size) * size;
  const int x0 = std::clamp(p.eraseX, 0, size), x1 = std::clamp(p.eraseX + p.eraseWidth, 0, size);
  const int y0 = std::clamp(p.eraseY, 0, size), y1 = std::clamp(p.eraseY + p.eraseHeight, 0, size);
  for (int c = 0; c < 3; ++c) {
    for (int y = y0; y < y1; ++y)
      std::fill(out + c * plane + static_cast<int64_t>(y) * size + x0,
                out + c * plane + static_cast<int64_t>(y) * size + x1, 0.0f);
  }
}

void augmentOnePass(const uint8_t* src, int size, const AugmentParams& p, float* out, const double mean[3],
                    const double std[3]);
}  // namespace

PolicyOp policyOpFromName(const std::string& name) {
  static const std::pair<const char*, PolicyOp> kOps[] = {
      {"identity", PolicyOp::None},
      {"rotate", PolicyOp::Rotate},
      {"shear_x", PolicyOp::ShearX},
      {"shear_y", PolicyOp::ShearY},
      {"translate_x", PolicyOp::TranslateX},
      {"translate_y", PolicyOp::TranslateY},
      {"brightness", PolicyOp::Brightness},
      {"color", PolicyOp::Color},
      {"contrast", PolicyOp::Contrast},
      {"sharpness", PolicyOp::Sharpness},
      {"posterize", PolicyOp::Posterize},
      {"solarize", PolicyOp::Solarize},
      {"autocontrast", PolicyOp::AutoContrast},
      {"equalize", PolicyOp::Equalize},
  };
  std::string known;
  for (const auto& [n, op] : kOps) {
    if (name == n) return op;
    known += known.empty() ? n : std::string(", ") + n;
  }
  throw RangeError("Unknown augmentation op '" + name + "' (known: " + known + ")");
}

void applyPixelOp(std::vector<uint8_t>& img, int size, PolicyOp op, double magnitude) {
  const double m = std::clamp(magnitude, -1.0, 1.0);
  const double factor = 1 + m * kPolicyEnhance;
  const size_t n = img.size();
  switch (op) {
    case PolicyOp::Brightness:
      for (size_t i = 0; i < n; ++i) img[i] = blend(0, img[i], factor);
      break;
    case PolicyOp::Color:
      for (size_t i = 0; i < n; i += 3) {
        const double l = luma(&img[i]);
        for (int ch = 0; ch < 3; ++ch) img[i + ch] = blend(l, img[i + ch], factor);
      }
      break;
    case PolicyOp::Contrast: {
      double sum = 0;
      for (size_t i = 0; i < n; i += 3) sum += luma(&img[i]);
      const double mean = std::floor(sum / static_cast<double>(n / 3) + 0.5);
      for (size_t i = 0; i < n; ++i) img[i] = blend(mean, img[i], factor);
      break;
    }
    case PolicyOp::Sharpness: {
      // ImageFilter.SMOOTH (3 x 3, centre 5, the rest 1, / 13) as the degenerate image; the border keeps its pixels.
      const std::vector<uint8_t> orig = img;
      for (int y = 1; y + 1 < size; ++y) {
        for (int x = 1; x + 1 < size; ++x) {
          for (int ch = 0; ch < 3; ++ch) {
            double acc = 0;
            for (int dy = -1; dy <= 1; ++dy)
              for (int dx = -1; dx <= 1; ++dx)
                acc += (dx == 0 && dy == 0 ? 5 : 1) *
                       static_cast<double>(orig[(static_cast<size_t>(y + dy) * size + (x + dx)) * 3 + ch]);
            const size_t i = (static_cast<size_t>(y) * size + x) * 3 + ch;
            img[i] = blend(std::round(acc / 13), orig[i], factor);
          }
        }
      }
      break;
    }
    case PolicyOp::Posterize: {
      const int bits = 8 - static_cast<int>(std::lround(4 * std::abs(m)));
      const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - bits));
      for (size_t i = 0; i < n; ++i) img[i] &= mask;
      break;
    }
    case PolicyOp::Solarize: {
      const double threshold = 256 * (1 - std::abs(m));
      for (size_t i = 0; i < n; ++i)
        if (img[i] >= threshold) img[i] = static_cast<uint8_t>(255 - img[i]);
      break;
    }
    case PolicyOp::AutoContrast:
      for (int ch = 0; ch < 3; ++ch) {
        int lo = 255, hi = 0;
        for (size_t i = ch; i < n; i += 3) {
          lo = std::min<int>(lo, img[i]);
          hi = std::max<int>(hi, img[i]);
        }
        if (hi <= lo) continue;
        const double scale = 255.0 / (hi - lo), offset = -lo * scale;
        for (size_t i = ch; i < n; i += 3)
          img[i] = static_cast<uint8_t>(std::clamp(static_cast<int>(img[i] * scale + offset), 0, 255));
      }
      break;
    case PolicyOp::Equalize:
      for (int ch = 0; ch < 3; ++ch) equalizeChannel(img, ch);
      break;
    default:
      break;
  }
}

void augmentInto(const uint8_t* src, int size, const AugmentParams& p, float* out, const double mean[3],
                 const double std[3]) {
  const bool shrink = p.downscale > 0 && p.downscale < 1;
  const bool policy = p.op != PolicyOp::None;
  if (!shrink && p.jpegQuality <= 0 && !policy) {
    augmentOnePass(src, size, p, out, mean, std);
  } else {
    const uint8_t fill[3] = {toByte(mean[0] * 255), toByte(mean[1] * 255), toByte(mean[2] * 255)};
    std::vector<uint8_t> img = resampleCrop(src, size, p, fill);
    applyPixelOp(img, size, p.op, p.magnitude);  // nothing for the geometric ops, done above
    if (shrink) {
      const int small = std::max(1, static_cast<int>(std::lround(size * p.downscale)));
      img = resizeRgb(resizeRgb(img, size, size, small, small), small, small, size, size);
    }
    if (p.jpegQuality > 0) jpegRoundTrip(img, size, std::clamp(p.jpegQuality, 1, 100));
    AugmentParams colour = p;  // the geometry is done: an identity resample of the degraded crop
    colour.x = 0;
    colour.y = 0;
    colour.width = size;
    colour.height = size;
    colour.flip = false;
    augmentOnePass(img.data(), size, colour, out, mean, std);
  }
  eraseBox(size, p, out);
}

namespace {
void augmentOnePass(const uint8_t* src, int size, const AugmentParams& p, float* out, const double mean[3],
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
}  // namespace

}  // namespace tf
