#include "jpeg_decoder.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/errors.h"
#include "icc_transform.h"
#include "image_resize.h"
#include "jpeg_metadata.h"

#ifdef TF_WITH_JPEG
#include <csetjmp>
#include <cstdio>  // jpeglib.h uses FILE and size_t without including their headers

#include <jerror.h>
#include <jpeglib.h>
#endif

namespace tf {

#ifndef TF_WITH_JPEG

bool jpegFastPathAvailable() { return false; }

std::vector<uint8_t> decodeJpegResized(const uint8_t*, size_t, const JpegDecodeOptions&) {
  throw DeviceUnavailableError("this build has no JPEG fast path (libjpeg was not found when the addon was built)");
}

#else

namespace {

constexpr int kMaxSize = 8192;

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
  // A profile other than sRGB (a camera's, Adobe RGB) is transformed to sRGB, as sharp does (after the resize, below).
  std::shared_ptr<const IccToSrgb> colour;
  if (!icc.empty() && (channels != 3 || !iccIsSrgb(icc.data(), icc.size()))) {
    if (channels == 3) colour = IccToSrgb::forProfile(icc.data(), icc.size());
    if (!colour) throw UnsupportedJpeg("embedded ICC profile is not sRGB and cannot be transformed here");
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
  int srcStride = stride;
  if (orientation != 1) {
    oriented =
        channels == 3 ? orient<3>(src, stride, ow, oh, orientation) : orient<1>(src, stride, ow, oh, orientation);
    src = oriented.data();
    if (orientation >= 5) std::swap(ow, oh);
    srcStride = ow;
  }
  std::vector<uint8_t> out = resizeRgb(src, channels, srcStride, ow, oh, size, options.mode);
  // The profile's transform runs on the resized pixels, not the decoded ones: a 500x333 photo has 3.3x the pixels
  // of a 224 px square (the transform costs about 19 ns a pixel here, more than the decode of a small photo). The
  // resize then averages the photo's own values, not sRGB ones: against sharp, which transforms first, 0.1 of a
  // level on average on tf_flowers' profiled photos.
  if (colour) colour->apply(out.data(), size, size, size);
  return out;
}

#endif  // TF_WITH_JPEG

}  // namespace tf
