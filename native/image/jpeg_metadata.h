// JPEG metadata the fast path reads before decoding: the EXIF orientation (APP1) and whether an embedded ICC profile
// (APP2) is plain sRGB. Plain C++ on byte buffers, no libjpeg, no napi.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tf {

// The EXIF orientation (1-8) in an APP1 segment's payload ("Exif\0\0" + TIFF), or 1 when it has none. Never throws.
int exifOrientation(const uint8_t* app1, size_t length);

// True when an ICC profile is a plain matrix/TRC RGB profile with sRGB's primaries and tone curve, i.e. converting
// from it to sRGB changes nothing. Never throws.
bool iccIsSrgb(const uint8_t* icc, size_t length);

}  // namespace tf
