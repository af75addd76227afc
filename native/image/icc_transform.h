// Colour transform of an embedded ICC profile to sRGB (Little CMS 2), for the JPEG fast path: what sharp does
// (libvips icc_transform to sRGB, perceptual intent) for photos with a camera or Adobe RGB profile. Plain C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tf {

class IccToSrgb {
 public:
  // The transform of an RGB profile to sRGB, shared between images with the same profile bytes (a bounded cache).
  // Returns nullptr when the profile cannot be used here (not RGB, unreadable, or no Little CMS in this build): the
  // caller leaves the image to the general decoder.
  static std::shared_ptr<const IccToSrgb> forProfile(const uint8_t* icc, size_t length);

  // Transforms `pixels` RGB8 pixels in place, rows of `stride` pixels of which the first `width` are used.
  // Thread-safe: one transform may run on several threads at once.
  void apply(uint8_t* rgb, int width, int height, int stride) const;

  ~IccToSrgb();
  IccToSrgb(const IccToSrgb&) = delete;
  IccToSrgb& operator=(const IccToSrgb&) = delete;

 private:
  explicit IccToSrgb(void* transform) : transform_(transform) {}
  void* transform_;  // cmsHTRANSFORM
};

}  // namespace tf
