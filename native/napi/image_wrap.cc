#include "image_wrap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../image/augment.h"
#include "../image/jpeg_decoder.h"
#include "../image/normalize.h"
#include "common.h"

namespace tfn {

namespace {

// The encoded bytes of a Buffer / Uint8Array, read in place; the caller keeps the array referenced while a worker
// reads them.
struct ByteView {
  const uint8_t* data = nullptr;
  size_t length = 0;
};

ByteView readBytes(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw tf::TypeError("Expected a Buffer or Uint8Array for `" + name + "`");
  }
  const auto arr = v.As<Napi::Uint8Array>();
  return {arr.Data(), arr.ElementLength()};
}

tf::ResizeMode readMode(const Napi::Value& v) {
  const std::string mode = readString(v, "mode");
  if (mode == "fill") return tf::ResizeMode::Fill;
  if (mode == "center-crop") return tf::ResizeMode::CenterCrop;
  throw tf::RangeError("Expected 'fill' or 'center-crop' for `mode`, received '" + mode + "'");
}

// async decodeJpegResized(data, size, mode, maxPixels): Promise<Uint8Array> of size*size*3 RGB bytes (HWC).
// Throws TypeError / RangeError synchronously for bad arguments; rejects with ERR_INVALID_IMAGE (corrupt, truncated,
// over maxPixels) or ERR_UNSUPPORTED_JPEG (a valid JPEG the fast path leaves to sharp: CMYK, non-sRGB ICC profile).
Napi::Value DecodeJpegResized(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteView bytes;
  tf::JpegDecodeOptions options;
  try {
    bytes = readBytes(info[0], "data");
    options.size = static_cast<int>(readInteger(info[1], "size", 1, 8192));
    options.mode = readMode(info[2]);
    options.maxPixels = static_cast<uint64_t>(readInteger(info[3], "maxPixels", 1, (int64_t{1} << 53) - 1));
  } catch (...) {
    rethrowAsJs(env);
  }
  auto result = std::make_shared<std::vector<uint8_t>>();
  return PromiseWorker::Run(
      env, "trt-flowers:decodeJpegResized",
      [bytes, options, result] { *result = tf::decodeJpegResized(bytes.data, bytes.length, options); },
      [result](Napi::Env env) -> Napi::Value {
        auto out = Napi::Uint8Array::New(env, result->size());
        std::copy(result->begin(), result->end(), out.Data());
        return out;
      },
      {info[0]});
}

double readFinite(const Napi::Object& o, const char* key) {
  const auto v = o.Get(key);
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
    throw tf::TypeError(std::string("Expected a finite number for `params.") + key + "`");
  }
  return v.As<Napi::Number>().DoubleValue();
}

// An optional number of `params` within [lo, hi]: `fallback` when absent or undefined.
double readOptional(const Napi::Object& o, const char* key, double fallback, double lo, double hi) {
  const auto v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  const double d = readFinite(o, key);
  if (d < lo || d > hi) {
    throw tf::RangeError(std::string("Expected `params.") + key + "` between " + std::to_string(lo) + " and " +
                         std::to_string(hi) + ", got " + std::to_string(d));
  }
  return d;
}

void readTriple(const Napi::Value& v, const char* name, double out[3]) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) {
    throw tf::TypeError(std::string("Expected an array of 3 numbers for `") + name + "`");
  }
  const auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < 3; ++i) {
    const auto e = a.Get(i);
    if (!e.IsNumber()) throw tf::TypeError(std::string("Expected an array of 3 numbers for `") + name + "`");
    out[i] = e.As<Napi::Number>().DoubleValue();
  }
}

// async augmentImage(src, size, params, out, offset, mean, std): Promise<void>. src: size*size*3 RGB bytes (HWC);
// writes the augmented, normalised CHW image into out[offset .. offset + 3*size*size) on the thread pool (see
// native/image/augment.h). Throws TypeError / RangeError synchronously for bad arguments. Both arrays must stay
// untouched until the promise settles.
Napi::Value AugmentImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteView src;
  int size = 0;
  tf::AugmentParams params;
  float* out = nullptr;
  std::array<double, 3> mean{}, stdev{};
  try {
    src = readBytes(info[0], "src");
    size = static_cast<int>(readInteger(info[1], "size", 1, 8192));
    const int64_t plane = static_cast<int64_t>(size) * size;
    if (static_cast<int64_t>(src.length) != plane * 3) {
      throw tf::RangeError("Expected " + std::to_string(plane * 3) + " source bytes, got " +
                           std::to_string(src.length));
    }
    if (!info[2].IsObject()) throw tf::TypeError("Expected an object for `params`");
    const auto p = info[2].As<Napi::Object>();
    params.x = readFinite(p, "x");
    params.y = readFinite(p, "y");
    params.width = readFinite(p, "width");
    params.height = readFinite(p, "height");
    params.flip = p.Get("flip").ToBoolean().Value();
    params.brightness = readFinite(p, "brightness");
    params.contrast = readFinite(p, "contrast");
    params.saturation = readFinite(p, "saturation");
    params.downscale = readOptional(p, "downscale", 1, 0.01, 1);
    params.jpegQuality = static_cast<int>(readOptional(p, "jpegQuality", 0, 0, 100));
    const double big = 8192;
    params.eraseX = static_cast<int>(readOptional(p, "eraseX", 0, 0, big));
    params.eraseY = static_cast<int>(readOptional(p, "eraseY", 0, 0, big));
    params.eraseWidth = static_cast<int>(readOptional(p, "eraseWidth", 0, 0, big));
    params.eraseHeight = static_cast<int>(readOptional(p, "eraseHeight", 0, 0, big));
    const Napi::Value op = p.Get("op");
    if (!op.IsUndefined()) {
      if (!op.IsString()) throw tf::TypeError("Expected a string for `params.op`");
      params.op = tf::policyOpFromName(op.As<Napi::String>().Utf8Value());
    }
    params.magnitude = readOptional(p, "magnitude", 0, -1, 1);
    const auto target = readFloat32Array(info[3], "out");
    const int64_t offset = readInteger(info[4], "offset", 0, (int64_t{1} << 53) - 1);
    if (offset + 3 * plane > static_cast<int64_t>(target.length)) {
      throw tf::RangeError("No room for " + std::to_string(3 * plane) + " values at " + std::to_string(offset));
    }
    out = const_cast<float*>(target.data) + offset;
    readTriple(info[5], "mean", mean.data());
    readTriple(info[6], "std", stdev.data());
  } catch (...) {
    rethrowAsJs(env);
  }
  return PromiseWorker::Run(
      env, "trt-flowers:augmentImage",
      [src, size, params, out, mean, stdev] {
        tf::augmentInto(src.data, size, params, out, mean.data(), stdev.data());
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info[0], info[3]});
}

// The decode-into arguments from info[first]: size, mode, maxPixels, out, offset, mean, std (out must have room for
// one 3 x size x size image at offset; std positive). Throws TypeError / RangeError.
struct DecodeInto {
  tf::JpegDecodeOptions options;
  float* out = nullptr;
  std::array<double, 3> mean{}, stdev{};
};

DecodeInto readDecodeInto(const Napi::CallbackInfo& info, size_t first) {
  DecodeInto d;
  d.options.size = static_cast<int>(readInteger(info[first], "size", 1, 8192));
  d.options.mode = readMode(info[first + 1]);
  d.options.maxPixels = static_cast<uint64_t>(readInteger(info[first + 2], "maxPixels", 1, (int64_t{1} << 53) - 1));
  const auto target = readFloat32Array(info[first + 3], "out");
  const int64_t plane = static_cast<int64_t>(d.options.size) * d.options.size;
  const int64_t offset = readInteger(info[first + 4], "offset", 0, (int64_t{1} << 53) - 1);
  if (offset + 3 * plane > static_cast<int64_t>(target.length)) {
    throw tf::RangeError("No room for " + std::to_string(3 * plane) + " values at offset " + std::to_string(offset) +
                         " in an output of " + std::to_string(target.length));
  }
  d.out = const_cast<float*>(target.data) + offset;
  readTriple(info[first + 5], "mean", d.mean.data());
  readTriple(info[first + 6], "std", d.stdev.data());
  for (const double s : d.stdev) {
    if (!(s > 0) || !std::isfinite(s)) throw tf::RangeError("Expected positive finite numbers for `std`");
  }
  return d;
}

// async decodeJpegInto(data, size, mode, maxPixels, out, offset, mean, std): Promise<void>. decodeJpegResized, then
// the image normalised as CHW float32 straight into out[offset .. offset + 3*size*size), in the same pool job (no
// intermediate array for JavaScript). Same errors as decodeJpegResized; `out` must stay untouched until it settles.
Napi::Value DecodeJpegInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteView bytes;
  DecodeInto d;
  try {
    bytes = readBytes(info[0], "data");
    d = readDecodeInto(info, 1);
  } catch (...) {
    rethrowAsJs(env);
  }
  return PromiseWorker::Run(
      env, "trt-flowers:decodeJpegInto",
      [bytes, d] {
        const auto hwc = tf::decodeJpegResized(bytes.data, bytes.length, d.options);
        tf::normalizeHwcToChw(hwc.data(), hwc.size() / 3, d.out, d.mean.data(), d.stdev.data());
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info[0], info[4]});
}

// A regular file's bytes, at most maxBytes, or false for anything the caller should read its own way to word the
// error (missing, unreadable, not a regular file, over the limit). Opened non-blocking, so a FIFO cannot hang it.
bool readRegularFile(const std::string& path, uint64_t maxBytes, std::vector<uint8_t>& bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > maxBytes) return false;
  // One byte more than the stated size shows whether the file ended there.
  bytes.resize(static_cast<size_t>(st.st_size) + 1);
  size_t length = 0;
  for (;;) {
    if (length == bytes.size()) {
      if (length > maxBytes) return false;
      bytes.resize(static_cast<size_t>(std::min<uint64_t>(bytes.size() * 2, maxBytes + 1)));
    }
    const ssize_t n = ::read(fd, bytes.data() + length, bytes.size() - length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    length += static_cast<size_t>(n);
  }
  if (length > maxBytes) return false;
  bytes.resize(length);
  return true;
}

// async decodeJpegFileInto(path, maxFileBytes, size, mode, maxPixels, out, offset, mean, std):
// Promise<undefined | Buffer | null>. One pool job from a file path to the normalised CHW floats in out[offset ..]:
// read (a regular file of at most maxFileBytes), decode, resize, normalise, as decodeJpegInto. Resolves with
// undefined when `out` holds the image, with the file's bytes when they are not for the fast path (not a JPEG, or a
// JPEG it leaves to sharp), with null when the file could not be read as a regular file within the limit (the caller
// reads it again to say why). Rejects with ERR_INVALID_IMAGE for a corrupt JPEG.
Napi::Value DecodeJpegFileInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  uint64_t maxFileBytes = 0;
  DecodeInto d;
  try {
    path = readString(info[0], "path");
    if (path.empty() || path.find('\0') != std::string::npos) throw tf::TypeError("Expected a file path for `path`");
    maxFileBytes = static_cast<uint64_t>(readInteger(info[1], "maxFileBytes", 1, (int64_t{1} << 53) - 1));
    d = readDecodeInto(info, 2);
  } catch (...) {
    rethrowAsJs(env);
  }
  struct State {
    bool readable = false;
    bool done = false;
    std::vector<uint8_t> bytes;
  };
  auto state = std::make_shared<State>();
  return PromiseWorker::Run(
      env, "trt-flowers:decodeJpegFileInto",
      [path, maxFileBytes, d, state] {
        state->readable = readRegularFile(path, maxFileBytes, state->bytes);
        const auto& b = state->bytes;
        if (!state->readable || b.size() < 3 || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF) return;
        try {
          const auto hwc = tf::decodeJpegResized(b.data(), b.size(), d.options);
          tf::normalizeHwcToChw(hwc.data(), hwc.size() / 3, d.out, d.mean.data(), d.stdev.data());
          state->done = true;
        } catch (const tf::UnsupportedJpeg&) {
          // The bytes go back for sharp.
        }
      },
      [state](Napi::Env env) -> Napi::Value {
        if (!state->readable) return env.Null();
        if (state->done) return env.Undefined();
        return Napi::Buffer<uint8_t>::Copy(env, state->bytes.data(), state->bytes.size());
      },
      {info[5]});
}

// decodeImagesIntoSync(images, maxFileBytes, size, mode, maxPixels, out, offset, mean, std): number. On the calling
// thread, for a worker thread that owns its batch: each image (a file path or a JPEG's bytes) read, decoded, resized
// and normalised into out[offset + i * 3 * size * size ..], in order, until the first one it cannot do here (not a
// readable regular file within maxFileBytes, not a JPEG, a JPEG for sharp, corrupt). Returns how many it wrote; the
// caller does the rest its own way, which also words any error. Throws TypeError / RangeError for bad arguments.
Napi::Value DecodeImagesIntoSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (!info[0].IsArray()) throw tf::TypeError("Expected an array of paths or Uint8Arrays for `images`");
    const auto images = info[0].As<Napi::Array>();
    const uint64_t maxFileBytes =
        static_cast<uint64_t>(readInteger(info[1], "maxFileBytes", 1, (int64_t{1} << 53) - 1));
    DecodeInto d = readDecodeInto(info, 2);
    const size_t per = 3 * static_cast<size_t>(d.options.size) * d.options.size;
    const auto target = readFloat32Array(info[5], "out");
    const size_t room = static_cast<size_t>(target.data + target.length - d.out);
    const uint32_t n = images.Length();
    if (static_cast<uint64_t>(n) * per > room) {
      throw tf::RangeError("No room for " + std::to_string(n) + " images in an output of " +
                           std::to_string(target.length));
    }
    std::vector<uint8_t> file;
    for (uint32_t i = 0; i < n; ++i) {
      const Napi::Value item = images.Get(i);
      const uint8_t* data = nullptr;
      size_t length = 0;
      if (item.IsString()) {
        const std::string path = item.As<Napi::String>().Utf8Value();
        if (path.empty() || path.find('\0') != std::string::npos || !readRegularFile(path, maxFileBytes, file)) {
          return Napi::Number::New(env, i);
        }
        data = file.data();
        length = file.size();
      } else {
        const ByteView bytes = readBytes(item, "images[" + std::to_string(i) + "]");
        data = bytes.data;
        length = bytes.length;
      }
      if (length < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) return Napi::Number::New(env, i);
      try {
        const auto hwc = tf::decodeJpegResized(data, length, d.options);
        tf::normalizeHwcToChw(hwc.data(), hwc.size() / 3, d.out + i * per, d.mean.data(), d.stdev.data());
      } catch (const tf::InvalidImage&) {
        return Napi::Number::New(env, i);
      } catch (const tf::UnsupportedJpeg&) {
        return Napi::Number::New(env, i);
      }
    }
    return Napi::Number::New(env, n);
  } catch (...) {
    rethrowAsJs(env);
  }
  return env.Undefined();
}

}  // namespace

void InitImage(Napi::Env env, Napi::Object exports) {
  exports.Set("augmentImage", Napi::Function::New(env, AugmentImage, "augmentImage"));
  if (!tf::jpegFastPathAvailable()) return;
  exports.Set("decodeJpegResized", Napi::Function::New(env, DecodeJpegResized, "decodeJpegResized"));
  exports.Set("decodeJpegInto", Napi::Function::New(env, DecodeJpegInto, "decodeJpegInto"));
  exports.Set("decodeJpegFileInto", Napi::Function::New(env, DecodeJpegFileInto, "decodeJpegFileInto"));
  exports.Set("decodeImagesIntoSync", Napi::Function::New(env, DecodeImagesIntoSync, "decodeImagesIntoSync"));
}

}  // namespace tfn
