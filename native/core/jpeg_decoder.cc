#include "jpeg_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "errors.h"

#ifdef TF_WITH_JPEG
#include <csetjmp>
#include <cstdio>  // jpeglib.h uses FILE and size_t without including their headers

#include <jerror.h>
#include <jpeglib.h>
#endif

namespace tf {
namespace {

constexpr int kMaxSize = 8192;

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

#ifndef TF_WITH_JPEG

bool jpegFastPathAvailable() { return false; }

std::vector<uint8_t> decodeJpegResized(const uint8_t*, size_t, const JpegDecodeOptions&) {
  throw DeviceUnavailableError("this build has no JPEG fast path (libjpeg was not found when the addon was built)");
}

#else

namespace {

// ---- libjpeg error handling: error_exit must not return, so it longjmps back into `guarded`, which throws. ----

struct ErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void failWith(j_common_ptr cinfo, const char* message) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  std::snprintf(err->message, sizeof err->message, "%s", message);
  std::longjmp(err->jump, 1);
}

[[noreturn]] void errorExit(j_common_ptr cinfo) {
  char message[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, message);
  failWith(cinfo, message);
}

void emitMessage(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  // libjpeg pads a truncated image with grey and only warns: here a truncated file is an error. Other warnings
  // (extraneous bytes before a marker, ...) are common in real photos and harmless.
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) errorExit(cinfo);
  cinfo->err->num_warnings++;
}

void progressMonitor(j_common_ptr cinfo) {
  // A progressive JPEG of a few KB with thousands of scans costs minutes of CPU; libjpeg-turbo's tools cap it too.
  if (cinfo->is_decompressor && reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > 500) {
    failWith(cinfo, "too many progressive scans (more than 500)");
  }
}

// Runs libjpeg calls; a libjpeg error jumps back here and becomes InvalidImage. Only libjpeg's C frames and the
// step lambda (which must own no object with a destructor) lie between the setjmp and the longjmp.
template <typename Step>
void guarded(ErrorManager& err, Step&& step) {
  if (setjmp(err.jump) != 0) throw InvalidImage(std::string("invalid JPEG: ") + err.message);
  step();
}

struct Decompressor {
  Decompressor() {
    std::memset(&cinfo, 0, sizeof cinfo);
    std::memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = errorExit;
    err.pub.emit_message = emitMessage;
    progress.progress_monitor = progressMonitor;
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }  // safe on a zeroed or half-created struct
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  jpeg_decompress_struct cinfo;
  ErrorManager err;
  jpeg_progress_mgr progress{};
};

// ---- resize: separable triangle filter, 14-bit fixed point, sampled as libvips' resize does ----

constexpr int kBits = 14;

// For each output sample: the first input sample it reads, how many, and their weights (summing to 1 << kBits).
struct Taps {
  int stride = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weight;
};

// Dense weights of each output sample over a run of input samples starting at first[i].
struct Dense {
  std::vector<int> first;
  std::vector<std::vector<double> > weights;
};

// One axis of libvips' resize (what sharp runs with kernel 'linear'), output samples [left, left + outLen) of an
// axis of inLen samples scaled by 1 / ratio:
//  - reducing (ratio > 1): a box average over floor(ratio / 2) samples when that is 2 or more (vips_shrink), then a
//    triangle of radius `ratio` (area-weighted), sampled at pixel centres with the grid centred on the input;
//  - enlarging (ratio < 1): bilinear at position i * ratio - 0.5 (affine with input displacement 0.5), edges
//    repeated;
//  - halfShift: then bilinear at i - 0.5, which libvips' affine step applies to an axis that is not enlarged when
//    the other one is (it displaces both axes). Mirrored so both paths give the same pixels.
Dense axisWeights(int inLen, int outLen, double ratio, int left, bool halfShift) {
  const bool enlarge = ratio < 1.0;
  const int box = enlarge ? 1 : std::max(1, static_cast<int>(std::floor(ratio / 2.0)));
  const int midLen = (inLen + box - 1) / box;  // after the box shrink (vips_shrink rounds up)
  const double r = ratio / box;
  const double radius = std::max(1.0, r);
  // libvips centres the output grid of rint(midLen / r) samples on the input.
  const double shift = enlarge ? 0.0 : (midLen - std::rint(midLen / r) * r) / 2.0;
  Dense d;
  d.first.resize(outLen);
  d.weights.resize(outLen);
  for (int i = 0; i < outLen; ++i) {
    const double centre = enlarge ? (i + left) * r : (i + left + 0.5) * r + shift;  // position + 0.5
    int lo = std::max(0, static_cast<int>(std::floor(centre - radius + 0.5)));
    const int hi = std::min(midLen, static_cast<int>(std::floor(centre + radius + 0.5)));
    std::vector<double> w;
    double sum = 0;
    for (int k = lo; k < hi; ++k) {
      w.push_back(std::max(0.0, 1.0 - std::fabs((k + 0.5 - centre) / radius)));
      sum += w.back();
    }
    if (hi <= lo || sum <= 0) {  // nothing under the filter: nearest sample
      lo = std::min(std::max(static_cast<int>(centre), 0), midLen - 1);
      w.assign(1, 1.0);
      sum = 1;
    }
    // Spread each box-shrunk sample back over the input samples it averages.
    const int inLo = lo * box;
    const int inHi = std::min(inLen, (lo + static_cast<int>(w.size())) * box);
    std::vector<double> full(inHi - inLo, 0.0);
    for (size_t k = 0; k < w.size(); ++k) {
      const int a = (lo + static_cast<int>(k)) * box, b = std::min(inLen, a + box);
      for (int j = a; j < b; ++j) full[j - inLo] += w[k] / sum / (b - a);
    }
    d.first[i] = inLo;
    d.weights[i] = std::move(full);
  }
  if (halfShift) {
    Dense shifted;
    shifted.first.resize(outLen);
    shifted.weights.resize(outLen);
    for (int i = 0; i < outLen; ++i) {
      const int a = std::max(0, i - 1);
      const int lo = std::min(d.first[a], d.first[i]);
      const int hi = std::max(d.first[a] + static_cast<int>(d.weights[a].size()),
                              d.first[i] + static_cast<int>(d.weights[i].size()));
      std::vector<double> w(hi - lo, 0.0);
      for (size_t k = 0; k < d.weights[a].size(); ++k) w[d.first[a] - lo + k] += 0.5 * d.weights[a][k];
      for (size_t k = 0; k < d.weights[i].size(); ++k) w[d.first[i] - lo + k] += 0.5 * d.weights[i][k];
      shifted.first[i] = lo;
      shifted.weights[i] = std::move(w);
    }
    d = std::move(shifted);
  }
  return d;
}

// Quantises dense weights to kBits fixed point, each output's weights summing exactly to 1 << kBits, in windows of
// one width (`stride`, zero-padded, shifted to stay inside the axis) so the inner loops have a fixed trip count.
Taps quantise(const Dense& d, int inLen) {
  const int outLen = static_cast<int>(d.first.size());
  Taps t;
  for (const auto& w : d.weights) t.stride = std::max(t.stride, static_cast<int>(w.size()));
  t.stride = std::min(t.stride, inLen);
  t.first.resize(outLen);
  t.count.assign(outLen, t.stride);
  t.weight.assign(static_cast<size_t>(outLen) * t.stride, 0);
  for (int i = 0; i < outLen; ++i) {
    const auto& w = d.weights[i];
    const int first = std::min(d.first[i], inLen - t.stride);
    int32_t* q = &t.weight[static_cast<size_t>(i) * t.stride] + (d.first[i] - first);
    int32_t total = 0;
    size_t best = 0;
    for (size_t k = 0; k < w.size(); ++k) {
      q[k] = static_cast<int32_t>(std::lround(w[k] * (1 << kBits)));
      total += q[k];
      if (q[k] > q[best]) best = k;
    }
    q[best] += (1 << kBits) - total;  // a flat image stays flat
    t.first[i] = first;
  }
  return t;
}

inline uint8_t settle(int32_t acc) {
  const int32_t v = (acc + (1 << (kBits - 1))) >> kBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// One row of the horizontal pass over a row holding columns [colLo, ...), N taps per output sample (N = 0: x.stride,
// not known at compile time).
template <int C, int N>
void horizontalRow(const uint8_t* in, int colLo, const Taps& x, int outW, uint8_t* out) {
  const int n = N > 0 ? N : x.stride;
  for (int i = 0; i < outW; ++i) {
    const int32_t* q = &x.weight[static_cast<size_t>(i) * n];
    const uint8_t* p = in + static_cast<size_t>(x.first[i] - colLo) * C;
    int32_t acc[C] = {};
    for (int k = 0; k < n; ++k) {
      for (int c = 0; c < C; ++c) acc[c] += q[k] * p[k * C + c];
    }
    for (int c = 0; c < C; ++c) out[i * C + c] = settle(acc[c]);
  }
}

template <int C>
void horizontal(const uint8_t* in, int colLo, const Taps& x, int outW, uint8_t* out) {
  switch (x.stride) {
    case 1:
      return horizontalRow<C, 1>(in, colLo, x, outW, out);
    case 2:
      return horizontalRow<C, 2>(in, colLo, x, outW, out);
    case 3:
      return horizontalRow<C, 3>(in, colLo, x, outW, out);
    case 4:
      return horizontalRow<C, 4>(in, colLo, x, outW, out);
    case 5:
      return horizontalRow<C, 5>(in, colLo, x, outW, out);
    case 6:
      return horizontalRow<C, 6>(in, colLo, x, outW, out);
    case 7:
      return horizontalRow<C, 7>(in, colLo, x, outW, out);
    case 8:
      return horizontalRow<C, 8>(in, colLo, x, outW, out);
    default:
      return horizontalRow<C, 0>(in, colLo, x, outW, out);
  }
}

// Resizes a C-channel image (rows `stride` pixels apart) to outW×outH; `x`/`y` are the taps along each axis.
// Vertical pass first, as libvips does (reducev before reduceh), on the columns the horizontal pass reads.
template <int C>
void resample(const uint8_t* src, int stride, const Taps& x, const Taps& y, int outW, int outH, uint8_t* dst) {
  const int colLo = *std::min_element(x.first.begin(), x.first.end());
  const int colHi = *std::max_element(x.first.begin(), x.first.end()) + x.stride;
  const size_t midStride = static_cast<size_t>(colHi - colLo) * C;
  std::vector<uint8_t> mid(midStride);
  std::vector<int32_t> acc(midStride);
  for (int j = 0; j < outH; ++j) {
    std::fill(acc.begin(), acc.end(), 0);
    const int32_t* q = &y.weight[static_cast<size_t>(j) * y.stride];
    for (int k = 0; k < y.stride; ++k) {
      const int32_t wk = q[k];
      if (wk == 0) continue;
      const uint8_t* row = src + (static_cast<size_t>(y.first[j] + k) * stride + colLo) * C;
      for (size_t i = 0; i < midStride; ++i) acc[i] += wk * row[i];
    }
    for (size_t i = 0; i < midStride; ++i) mid[i] = settle(acc[i]);
    horizontal<C>(mid.data(), colLo, x, outW, dst + static_cast<size_t>(j) * outW * C);
  }
}

// Applies an EXIF orientation (2-8) to a C-channel w×h image (rows `stride` pixels apart); the result is h×w for
// orientations 5-8, rows packed.
template <int C>
std::vector<uint8_t> orient(const uint8_t* src, int stride, int w, int h, int orientation) {
  const bool swap = orientation >= 5;
  const int ow = swap ? h : w, oh = swap ? w : h;
  // Output pixel (x, y) comes from stored pixel (x, y), transposed for 5-8, then flipped.
  const bool flipX = orientation == 2 || orientation == 3 || orientation == 7 || orientation == 8;
  const bool flipY = orientation == 3 || orientation == 4 || orientation == 6 || orientation == 7;
  std::vector<uint8_t> out(static_cast<size_t>(ow) * oh * C);
  for (int y = 0; y < oh; ++y) {
    for (int x = 0; x < ow; ++x) {
      int sx = swap ? y : x, sy = swap ? x : y;
      if (flipX) sx = w - 1 - sx;
      if (flipY) sy = h - 1 - sy;
      std::memcpy(&out[(static_cast<size_t>(y) * ow + x) * C], src + (static_cast<size_t>(sy) * stride + sx) * C, C);
    }
  }
  return out;
}

// Fits a C-channel w×h image (rows `stride` pixels apart) into size×size as `mode` says, expanded to RGB.
template <int C>
std::vector<uint8_t> fit(const uint8_t* src, int stride, int w, int h, int size, ResizeMode mode) {
  Taps x, y;
  if (mode == ResizeMode::Fill) {
    const double rx = static_cast<double>(w) / size, ry = static_cast<double>(h) / size;
    x = quantise(axisWeights(w, size, rx, 0, ry < 1.0 && rx >= 1.0), w);
    y = quantise(axisWeights(h, size, ry, 0, rx < 1.0 && ry >= 1.0), h);
  } else {
    // Shorter side to `size`, the longer one to rint(long / ratio), then the centred window, as sharp's 'cover'.
    const double ratio = static_cast<double>(std::min(w, h)) / size;
    const int fullW = std::max(size, static_cast<int>(std::rint(w / ratio)));
    const int fullH = std::max(size, static_cast<int>(std::rint(h / ratio)));
    x = quantise(axisWeights(w, size, ratio, (fullW - size + 1) / 2, false), w);
    y = quantise(axisWeights(h, size, ratio, (fullH - size + 1) / 2, false), h);
  }
  std::vector<uint8_t> out(static_cast<size_t>(size) * size * 3);
  if (C == 3) {
    resample<C>(src, stride, x, y, size, size, out.data());
  } else {
    std::vector<uint8_t> grey(static_cast<size_t>(size) * size);
    resample<C>(src, stride, x, y, size, size, grey.data());
    for (size_t i = 0; i < grey.size(); ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = grey[i];
  }
  return out;
}

// The embedded ICC profile, reassembled from its APP2 chunks (empty when there is none).
std::vector<uint8_t> iccProfile(j_decompress_ptr cinfo) {
  std::vector<std::pair<int, jpeg_saved_marker_ptr> > chunks;
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 2 && m->data_length > 14 && std::memcmp(m->data, "ICC_PROFILE\0", 12) == 0) {
      chunks.emplace_back(m->data[12], m);
    }
  }
  std::sort(chunks.begin(), chunks.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<uint8_t> icc;
  for (const auto& [seq, m] : chunks) icc.insert(icc.end(), m->data + 14, m->data + m->data_length);
  return icc;
}

}  // namespace

bool jpegFastPathAvailable() { return true; }

std::vector<uint8_t> decodeJpegResized(const uint8_t* data, size_t length, const JpegDecodeOptions& options) {
  const int size = options.size;
  if (size < 1 || size > kMaxSize) {
    throw RangeError("Expected an integer between 1 and " + std::to_string(kMaxSize) + " for `size`, received " +
                     std::to_string(size));
  }
  if (options.maxPixels < 1) throw RangeError("Expected a positive integer for `maxPixels`");
  if (data == nullptr || length == 0) throw InvalidImage("empty file (0 bytes)");
  if (length < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
    throw InvalidImage("not a JPEG (no FF D8 FF signature)");
  }

  Decompressor d;
  j_decompress_ptr cinfo = &d.cinfo;
  guarded(d.err, [&] {
    jpeg_create_decompress(cinfo);
    cinfo->progress = &d.progress;
    jpeg_mem_src(cinfo, data, static_cast<unsigned long>(length));
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_save_markers(cinfo, JPEG_APP0 + 2, 0xFFFF);
    jpeg_read_header(cinfo, TRUE);
  });

  const uint64_t width = cinfo->image_width, height = cinfo->image_height;
  if (width * height > options.maxPixels) {
    throw InvalidImage(std::to_string(width) + "x" + std::to_string(height) + " pixels exceeds the pixel limit of " +
                       std::to_string(options.maxPixels));
  }
  int channels = 3;
  switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
      channels = 1;
      cinfo->out_color_space = JCS_GRAYSCALE;  // expanded after the resize, on fewer pixels
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo->out_color_space = JCS_RGB;
      break;
    default:
      throw UnsupportedJpeg("CMYK/YCCK JPEG: not handled by the fast path");
  }
  int orientation = 1;
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      orientation = exifOrientation(m->data, m->data_length);
      break;
    }
  }
  const std::vector<uint8_t> icc = iccProfile(cinfo);
  if (!icc.empty() && (channels != 3 || !iccIsSrgb(icc.data(), icc.size()))) {
    throw UnsupportedJpeg("embedded ICC profile is not sRGB: needs a colour transform");
  }

  // Shrink-on-load: the IDCT produces 1/2, 1/4 or 1/8 of the image directly while that still leaves at least
  // `size` pixels on the shorter side. Same choice as sharp (one step less when the shrink's integer part equals
  // the factor), so both resize from the same pixels.
  const double shrink = static_cast<double>(std::min(width, height)) / size;
  unsigned denom = shrink >= 8 ? 8 : shrink >= 4 ? 4 : shrink >= 2 ? 2 : 1;
  if (denom > 1 && static_cast<unsigned>(shrink) == denom) denom /= 2;
  cinfo->scale_num = 1;
  cinfo->scale_denom = denom;
  cinfo->dct_method = JDCT_ISLOW;
  guarded(d.err, [&] { jpeg_start_decompress(cinfo); });
  const int w = static_cast<int>(cinfo->output_width), h = static_cast<int>(cinfo->output_height);
  if (cinfo->output_components != channels) throw InvalidImage("unexpected number of decoded channels");

  // Every byte is written by the decoder: no zero fill.
  std::unique_ptr<uint8_t[]> pixels(new uint8_t[static_cast<size_t>(w) * h * channels]);
  std::vector<JSAMPROW> rows(h);
  for (int r = 0; r < h; ++r) rows[r] = &pixels[static_cast<size_t>(r) * w * channels];
  bool stalled = false;
  guarded(d.err, [&] {
    while (cinfo->output_scanline < cinfo->output_height) {
      if (jpeg_read_scanlines(cinfo, &rows[cinfo->output_scanline], cinfo->output_height - cinfo->output_scanline) ==
          0) {
        stalled = true;
        break;
      }
    }
  });
  if (stalled) throw InvalidImage("invalid JPEG: decoder stalled before the last row");

  // libjpeg rounds scaled sizes up, a last row or column standing for part of a pixel; libvips drops it.
  const int stride = w;
  int ow = std::max(1, static_cast<int>(width / denom)), oh = std::max(1, static_cast<int>(height / denom));
  ow = std::min(ow, w);
  oh = std::min(oh, h);
  const uint8_t* src = pixels.get();
  std::vector<uint8_t> oriented;
  if (orientation != 1) {
    oriented =
        channels == 3 ? orient<3>(src, stride, ow, oh, orientation) : orient<1>(src, stride, ow, oh, orientation);
    src = oriented.data();
    if (orientation >= 5) std::swap(ow, oh);
    return channels == 3 ? fit<3>(src, ow, ow, oh, size, options.mode) : fit<1>(src, ow, ow, oh, size, options.mode);
  }
  return channels == 3 ? fit<3>(src, stride, ow, oh, size, options.mode)
                       : fit<1>(src, stride, ow, oh, size, options.mode);
}

#endif  // TF_WITH_JPEG

}  // namespace tf
