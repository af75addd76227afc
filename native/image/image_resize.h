// Antialiased resize to size×size uint8 RGB HWC: a separable triangle filter in 14-bit fixed point, sampled as libvips'
// resize does with kernel 'linear' (what sharp runs), so both give the same pixels within a grey level or two.
// Plain C++, no libjpeg, no napi.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tf {

// 'fill' stretches to size×size; 'center-crop' scales the shorter side to size and keeps the centred window (sharp's
// 'cover').
enum class ResizeMode { Fill, CenterCrop };

// Resizes a width×height image of `channels` uint8 channels (1 = grey, 3 = RGB), rows `stride` pixels apart, to
// size×size×3 uint8 RGB (HWC) as `mode` says; grey is expanded to RGB after the resize. The caller checks size >= 1
// and width, height >= 1. Throws RangeError for another channel count.
std::vector<uint8_t> resizeRgb(const uint8_t* src, int channels, int stride, int width, int height, int size,
                               ResizeMode mode);

namespace detail {
// Tests only: true makes resizeRgb take its scalar row loops where it would use SIMD (the pixels must not differ).
extern bool scalarResizeForTesting;
}  // namespace detail

}  // namespace tf
