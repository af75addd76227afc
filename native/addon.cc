// Registers the JS-visible classes and functions; nothing else lives here.
#include <napi.h>

#include "napi/addon_data.h"
#include "napi/dist_wrap.h"
#include "napi/image_wrap.h"
#include "napi/loss_wrap.h"
#include "napi/model_wrap.h"
#include "napi/runtime_wrap.h"
#include "napi/trainer_wrap.h"
#ifdef TF_WITH_TENSORRT
#include "napi/tensorrt_wrap.h"
#endif

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tfn::createAddonData(env);
  tfn::InitRuntime(env, exports);
  tfn::InitImage(env, exports);
  tfn::InitLoss(env, exports);
  tfn::ModelWrap::Init(env, exports);
  tfn::TrainerWrap::Init(env, exports);
  tfn::ProcessGroupWrap::Init(env, exports);
#ifdef TF_WITH_TENSORRT
  tfn::TensorRTEngineWrap::Init(env, exports);
#endif
  return exports;
}
}  // namespace

NODE_API_MODULE(trt_flowers, Init)
