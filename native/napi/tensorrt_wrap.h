// JS class `TensorRTEngine` (a deserialized plan, created by the async `loadTensorRTEngine(path, device, options)`),
// the async `buildTensorRTEngine(options)` and the sync `tensorrtInfo()`. Compiled only when CMake found TensorRT
// (TF_WITH_TENSORRT); without it this file is empty and the addon exports none of these.
#pragma once

#ifdef TF_WITH_TENSORRT

#include <napi.h>

#include <memory>

#include "../tensorrt/trt_engine.h"

namespace tfn {

class TensorRTEngineWrap : public Napi::ObjectWrap<TensorRTEngineWrap> {
 public:
  // Registers TensorRTEngine, loadTensorRTEngine, buildTensorRTEngine and tensorrtInfo on `exports`.
  static void Init(Napi::Env env, Napi::Object exports);
  // async loadTensorRTEngine(path, device?, {cudaGraph?, contexts?}?): Promise<TensorRTEngine>. Rejects with
  // ERR_MODEL_LOAD (missing plan, a plan from another TensorRT version or GPU, not a classifier),
  // ERR_BACKEND_UNAVAILABLE (no CUDA GPU), ERR_OUT_OF_RANGE.
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit TensorRTEngineWrap(const Napi::CallbackInfo& info);
  ~TensorRTEngineWrap() override;
  void Finalize(Napi::Env env) override;

 private:
  Napi::Value Infer(const Napi::CallbackInfo& info);       // async infer(input, shape)
  Napi::Value Dispose(const Napi::CallbackInfo& info);     // sync dispose()
  Napi::Value GetInfo(const Napi::CallbackInfo& info);     // sync info getter
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);  // sync disposed getter

  // Throws DisposedError (code ERR_DISPOSED) when disposed.
  std::shared_ptr<tf::trt::TrtEngine> engine(Napi::Env env) const;
  void release(Napi::Env env);

  std::shared_ptr<tf::trt::TrtEngine> engine_;
  int64_t externalBytes_ = 0;
};

}  // namespace tfn

#endif  // TF_WITH_TENSORRT
