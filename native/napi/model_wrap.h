// JS class `Model`: a loaded TorchScript module. Created by the async `loadModel(path, device)`.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/torch_model.h"

namespace tfn {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Init(Napi::Env env, Napi::Object exports);
  // async loadModel(path: string, device: string): Promise<Model>. Rejects with ERR_MODEL_LOAD, ERR_OUT_OF_RANGE,
  // ERR_BACKEND_UNAVAILABLE.
  static Napi::Value Load(const Napi::CallbackInfo& info);
  static bool IsInstance(const Napi::Value& v);

  explicit ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override;
  // A model the program never disposed: give V8 its memory accounting back when it is collected.
  void Finalize(Napi::Env env) override;

  // Throws DisposedError (code ERR_DISPOSED) when disposed.
  std::shared_ptr<tf::TorchModel> model(Napi::Env env) const;

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);         // async forward(input, shape)
  Napi::Value PooledFeatures(const Napi::CallbackInfo& info);  // async pooledFeatures(input, shape)
  Napi::Value SetTraining(const Napi::CallbackInfo& info);     // async setTraining(bool)
  Napi::Value Save(const Napi::CallbackInfo& info);            // async save(path)
  Napi::Value SetMetadata(const Napi::CallbackInfo& info);     // sync setMetadata(json | null)
  Napi::Value Dispose(const Napi::CallbackInfo& info);         // async dispose(): settles after the calls in flight
  Napi::Value GetInfo(const Napi::CallbackInfo& info);         // sync info getter
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);      // sync disposed getter

  void release(Napi::Env env);

  std::shared_ptr<tf::TorchModel> model_;
  int64_t externalBytes_ = 0;
};

}  // namespace tfn
