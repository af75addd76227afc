#include "image_wrap.h"

#include <memory>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../core/jpeg_decoder.h"
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

}  // namespace

void InitImage(Napi::Env env, Napi::Object exports) {
  if (!tf::jpegFastPathAvailable()) return;
  exports.Set("decodeJpegResized", Napi::Function::New(env, DecodeJpegResized, "decodeJpegResized"));
}

}  // namespace tfn
