// JPEG fast path: libjpeg-turbo decode (DCT-scaled when the image is at least twice the target) and an antialiased
// triangle-filter resize (image_resize.h) straight to size×size uint8 RGB HWC. Plain C++, no napi.h.
//
// It mirrors what the sharp pipeline does with kernel 'linear' (shrink-on-load by 2/4/8, then a triangle filter with
// the centre convention; 'center-crop' = shorter side to size, centred crop) so both give the same pixels within a
// grey level or two. An embedded RGB ICC profile other than sRGB is transformed to sRGB after the decode (Little CMS,
// perceptual intent, as sharp does) where the build has lcms2. What it does not do (CMYK/YCCK, grey or unreadable
// profiles, any profile without lcms2) is refused with UnsupportedJpeg so the caller can use its general decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "image_resize.h"

namespace tf {

struct JpegDecodeOptions {
  // Output height and width.
  int size = 224;
  ResizeMode mode = ResizeMode::Fill;
  // Largest accepted width × height, checked from the header before any pixel is decoded.
  uint64_t maxPixels = 50'000'000;
};

// True when this build has the libjpeg fast path (compiled in when CMake / node-gyp found libjpeg).
bool jpegFastPathAvailable();

// Decodes JPEG bytes to size×size×3 uint8 RGB (HWC), EXIF orientation applied. Blocking; call off the event loop.
// Throws InvalidImage (corrupt, truncated, over maxPixels), UnsupportedJpeg (a valid JPEG to decode elsewhere),
// RangeError (bad options), DeviceUnavailableError (built without libjpeg).
std::vector<uint8_t> decodeJpegResized(const uint8_t* data, size_t length, const JpegDecodeOptions& options);

}  // namespace tf
