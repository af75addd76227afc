#include "image_resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "../core/errors.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(TF_NO_CLONES)
#define TF_X86_SIMD 1
#include <immintrin.h>
#endif

namespace tf {
namespace {

// ---- resize: separable triangle filter, 14-bit fixed point, sampled as libvips' resize does ----

constexpr int kBits = 14;

// For each output sample: the first input sample it reads, how many, and their weights (summing to 1 << kBits).
struct Taps {
  int stride = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weight;
  // The same weights for the RGB SIMD row: per output sample, one 8-lane int16 vector per pair of taps k, k+1:
  // {w_k, w_k+1} for each of R, G, B, then two zeros (a tap past the window has weight 0).
  std::vector<int16_t> pairs;
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
  const int npairs = (t.stride + 1) / 2;
  t.pairs.assign(static_cast<size_t>(outLen) * npairs * 8, 0);
  for (int i = 0; i < outLen; ++i) {
    const int32_t* q = &t.weight[static_cast<size_t>(i) * t.stride];
    for (int k = 0; k < t.stride; ++k) {
      int16_t* v = &t.pairs[(static_cast<size_t>(i) * npairs + k / 2) * 8];
      for (int c = 0; c < 3; ++c) v[2 * c + (k & 1)] = static_cast<int16_t>(q[k]);  // |q| <= 1 << kBits
    }
  }
  return t;
}

// The row loops below are compiled twice on x86-64, for AVX2 and for the baseline, and picked once at load time:
// AVX2's 8-lane 32-bit multiply is what these loops are made of (SSE2 has none).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(TF_NO_CLONES)
#define TF_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TF_SIMD_CLONES
#endif

inline uint8_t settle(int32_t acc) {
  const int32_t v = (acc + (1 << (kBits - 1))) >> kBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

TF_SIMD_CLONES void firstTap(int32_t* __restrict acc, const uint8_t* __restrict row, int32_t w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] = w * row[i];
}

TF_SIMD_CLONES void nextTap(int32_t* __restrict acc, const uint8_t* __restrict row, int32_t w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * row[i];
}

TF_SIMD_CLONES void settleRow(uint8_t* __restrict out, const int32_t* __restrict acc, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = settle(acc[i]);
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

#ifdef TF_X86_SIMD
// The RGB horizontal pass with SSSE3: per output sample, each pair of taps is one byte shuffle of 8 loaded bytes
// (R G B R G B . .) to 16-bit (R R G G B B 0 0) and one multiply-add with the pair's weights, giving the three 32-bit
// sums exactly as the scalar loop does (same weights, same rounding and clamping: the same pixels). Reads up to 5
// bytes past the last window; the caller's row has 16 bytes of padding.
template <int NP>
__attribute__((target("ssse3"))) void horizontalRgbSsse3Row(const uint8_t* in, int colLo, const Taps& x, int outW,
                                                            uint8_t* out) {
  const int npairs = NP > 0 ? NP : (x.stride + 1) / 2;
  const __m128i spread = _mm_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
  const __m128i half = _mm_set1_epi32(1 << (kBits - 1));
  const __m128i* w = reinterpret_cast<const __m128i*>(x.pairs.data());
  for (int i = 0; i < outW; ++i, w += npairs) {
    const uint8_t* p = in + static_cast<size_t>(x.first[i] - colLo) * 3;
    __m128i acc = half;
    for (int k = 0; k < npairs; ++k) {
      const __m128i px = _mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 6 * k)), spread);
      acc = _mm_add_epi32(acc, _mm_madd_epi16(px, _mm_loadu_si128(w + k)));
    }
    const __m128i v = _mm_srai_epi32(acc, kBits);
    const uint32_t rgb = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(v, v), v)));
    std::memcpy(out + static_cast<size_t>(i) * 3, &rgb, 3);
  }
}

void horizontalRgbSsse3(const uint8_t* in, int colLo, const Taps& x, int outW, uint8_t* out) {
  switch ((x.stride + 1) / 2) {
    case 1:
      return horizontalRgbSsse3Row<1>(in, colLo, x, outW, out);
    case 2:
      return horizontalRgbSsse3Row<2>(in, colLo, x, outW, out);
    case 3:
      return horizontalRgbSsse3Row<3>(in, colLo, x, outW, out);
    case 4:
      return horizontalRgbSsse3Row<4>(in, colLo, x, outW, out);
    case 5:
      return horizontalRgbSsse3Row<5>(in, colLo, x, outW, out);
    default:
      return horizontalRgbSsse3Row<0>(in, colLo, x, outW, out);
  }
}

bool useSimd() {
  static const bool has = __builtin_cpu_supports("ssse3");
  return has && !detail::scalarResizeForTesting;
}
#endif

template <int C>
void horizontal(const uint8_t* in, int colLo, const Taps& x, int outW, uint8_t* out) {
#ifdef TF_X86_SIMD
  if (C == 3 && useSimd()) return horizontalRgbSsse3(in, colLo, x, outW, out);
#endif
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
  std::vector<uint8_t> mid(midStride + 16);  // padding the SIMD row reads past the last window
  std::vector<int32_t> acc(midStride);
  for (int j = 0; j < outH; ++j) {
    const int32_t* q = &y.weight[static_cast<size_t>(j) * y.stride];
    bool first = true;
    for (int k = 0; k < y.stride; ++k) {
      const int32_t wk = q[k];
      if (wk == 0) continue;
      const uint8_t* row = src + (static_cast<size_t>(y.first[j] + k) * stride + colLo) * C;
      (first ? firstTap : nextTap)(acc.data(), row, wk, midStride);
      first = false;
    }
    if (first) std::fill(acc.begin(), acc.end(), 0);
    settleRow(mid.data(), acc.data(), midStride);
    horizontal<C>(mid.data(), colLo, x, outW, dst + static_cast<size_t>(j) * outW * C);
  }
}

// Fits a C-channel w×h image (rows `stride` pixels apart) into size×size as `mode` says, expanded to RGB.
struct AxisTaps {
  Taps x, y;
};

AxisTaps makeTaps(int w, int h, int size, ResizeMode mode) {
  AxisTaps t;
  Taps& x = t.x;
  Taps& y = t.y;
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
  return t;
}

// The taps of the geometries seen lately: photos of a data set share a few sizes, and computing the weights costs
// about a tenth of a resize.
constexpr size_t kTapsCacheEntries = 64;
std::mutex tapsMutex;
std::list<std::pair<std::tuple<int, int, int, int>, std::shared_ptr<const AxisTaps> > > tapsCache;  // recent first

std::shared_ptr<const AxisTaps> tapsFor(int w, int h, int size, ResizeMode mode) {
  const auto key = std::make_tuple(w, h, size, static_cast<int>(mode));
  {
    std::lock_guard<std::mutex> lock(tapsMutex);
    for (auto it = tapsCache.begin(); it != tapsCache.end(); ++it) {
      if (it->first == key) {
        tapsCache.splice(tapsCache.begin(), tapsCache, it);
        return it->second;
      }
    }
  }
  auto made = std::make_shared<const AxisTaps>(makeTaps(w, h, size, mode));
  std::lock_guard<std::mutex> lock(tapsMutex);
  tapsCache.emplace_front(key, made);
  if (tapsCache.size() > kTapsCacheEntries) tapsCache.pop_back();
  return made;
}

template <int C>
std::vector<uint8_t> fit(const uint8_t* src, int stride, int w, int h, int size, ResizeMode mode) {
  const std::shared_ptr<const AxisTaps> taps = tapsFor(w, h, size, mode);
  const Taps& x = taps->x;
  const Taps& y = taps->y;
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

}  // namespace

namespace detail {
bool scalarResizeForTesting = false;
}  // namespace detail

std::vector<uint8_t> resizeRgb(const uint8_t* src, int channels, int stride, int width, int height, int size,
                               ResizeMode mode) {
  switch (channels) {
    case 3:
      return fit<3>(src, stride, width, height, size, mode);
    case 1:
      return fit<1>(src, stride, width, height, size, mode);
    default:
      throw RangeError("resizeRgb: expected 1 or 3 channels, received " + std::to_string(channels));
  }
}

}  // namespace tf
