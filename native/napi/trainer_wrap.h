// JS class `Trainer`: `new Trainer(model, options)` owns an optimizer over the model's parameters.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/trainer.h"

namespace tfn {

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static Napi::Function Init(Napi::Env env, Napi::Object exports);
  // Sync constructor; throws TypeError/RangeError naming the bad option.
  explicit TrainerWrap(const Napi::CallbackInfo& info);
  static bool IsInstance(const Napi::Value& v);
  // The native trainer; throws the JS DisposedError (ERR_DISPOSED) once disposed.
  std::shared_ptr<tf::Trainer> trainer(Napi::Env env) const;

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);      // async step(q, p, n, shape, labels)
  Napi::Value HeadStep(const Napi::CallbackInfo& info);  // async headStep(q, p, n, [B, D], labels): pooled features
  Napi::Value Evaluate(const Napi::CallbackInfo& info);  // async evaluate(q, p, n, shape, labels)
  Napi::Value SetLearningRate(const Napi::CallbackInfo& info);  // sync; applied at the next step
  Napi::Value GetLearningRate(const Napi::CallbackInfo& info);  // sync getter
  Napi::Value GetStepCount(const Napi::CallbackInfo& info);     // sync getter
  Napi::Value SwapEma(const Napi::CallbackInfo& info);          // async swapEma() -> boolean
  Napi::Value GetEmaUpdates(const Napi::CallbackInfo& info);    // sync getter
  Napi::Value GetEmaSwappedIn(const Napi::CallbackInfo& info);  // sync getter
  Napi::Value SaveState(const Napi::CallbackInfo& info);        // async saveState(path)
  Napi::Value LoadState(const Napi::CallbackInfo& info);        // async loadState(path)
  Napi::Value Dispose(const Napi::CallbackInfo& info);          // async dispose(): settles after the calls in flight
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);       // sync getter
  // sync learningRateScales() -> [{name, depth, scale}], one per trainable parameter, fixed at construction
  Napi::Value LearningRateScales(const Napi::CallbackInfo& info);
  // sync getter parameterGroupCount
  Napi::Value GetParameterGroupCount(const Napi::CallbackInfo& info);

  Napi::Value RunBatch(const Napi::CallbackInfo& info, bool train, bool pooled);

  std::shared_ptr<tf::Trainer> trainer_;
  Napi::ObjectReference model_;  // keeps the JS model alive as long as the trainer
};

}  // namespace tfn
