// Free functions over the JPEG fast path: decodeJpegResized(data, size, mode, maxPixels), async. Registered only
// when the addon was built with libjpeg (TF_WITH_JPEG); callers test for the function and use sharp otherwise.
#pragma once

#include <napi.h>

namespace tfn {

void InitImage(Napi::Env env, Napi::Object exports);

}  // namespace tfn
