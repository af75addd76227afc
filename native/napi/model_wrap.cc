#include "model_wrap.h"

#include "../core/errors.h"
#include "addon_data.h"
#include "common.h"
#include "thread_jobs.h"

namespace tfn {

namespace {
// Marks the External that loadModel() passes to the constructor: nothing else can construct a Model.
constexpr napi_type_tag kModelTag = {0x6d2f0c31a4b94f27ULL, 0x9e51d3a8c07b6f12ULL};
}  // namespace

Napi::Function ModelWrap::Init(Napi::Env env, Napi::Object exports) {
  auto cls = DefineClass(
      env, "Model",
      {InstanceMethod<&ModelWrap::Forward>("forward"), InstanceMethod<&ModelWrap::PooledFeatures>("pooledFeatures"),
       InstanceMethod<&ModelWrap::SetTraining>("setTraining"), InstanceMethod<&ModelWrap::Save>("save"),
       InstanceMethod<&ModelWrap::SetMetadata>("setMetadata"), InstanceMethod<&ModelWrap::Dispose>("dispose"),
       InstanceAccessor<&ModelWrap::GetInfo>("info"), InstanceAccessor<&ModelWrap::IsDisposed>("disposed")});
  addonData(env).modelCtor = Napi::Persistent(cls);
  exports.Set("Model", cls);
  exports.Set("loadModel", Napi::Function::New(env, &ModelWrap::Load, "loadModel"));
  return cls;
}

bool ModelWrap::IsInstance(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(addonData(v.Env()).modelCtor.Value());
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  model_ = unwrapConstructorArgument<tf::TorchModel>(info[0], kModelTag);
  if (!model_) {
    throw Napi::TypeError::New(info.Env(), "Model cannot be constructed directly: use loadModel(path, device)");
  }
  externalBytes_ = model_->parameterCount() * static_cast<int64_t>(sizeof(float));
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), externalBytes_);
}

ModelWrap::~ModelWrap() { model_.reset(); }

void ModelWrap::Finalize(Napi::Env env) { release(env); }

void ModelWrap::release(Napi::Env env) {
  if (!model_) return;
  model_.reset();
  Napi::MemoryManagement::AdjustExternalMemory(env, -externalBytes_);
  externalBytes_ = 0;
}

std::shared_ptr<tf::TorchModel> ModelWrap::model(Napi::Env env) const {
  if (!model_) {
    auto err = Napi::Error::New(env, "the model has been disposed");
    err.Set("code", Napi::String::New(env, "ERR_DISPOSED"));
    throw err;
  }
  return model_;
}

Napi::Value ModelWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, device;
  bool inference = false;
  try {
    path = readString(info[0], "path");
    device = info[1].IsUndefined() ? "cpu" : readString(info[1], "device");
    inference = info[2].IsUndefined() ? false : readBool(info[2], "inference");
  } catch (...) {
    rethrowAsJs(env);
  }
  auto slot = std::make_shared<std::shared_ptr<tf::TorchModel>>();
  return PromiseWorker::Run(
      env, "trt-flowers:loadModel",
      [slot, path, device, inference] { *slot = tf::TorchModel::load(path, device, inference); },
      [slot](Napi::Env env) -> Napi::Value {
        return addonData(env).modelCtor.New({wrapForConstructor(env, slot.get(), kModelTag)});
      },
      {});
}

namespace {
// The (input, shape) arguments of forward() and pooledFeatures(): a Float32Array and its NCHW shape.
void readImageBatch(const Napi::CallbackInfo& info, FloatView& input, std::vector<int64_t>& shape) {
  try {
    input = readFloat32Array(info[0], "input");
    shape = readShape(info[1], "shape");
    const int64_t expected = tf::checkImageShape(shape, "input");
    if (static_cast<int64_t>(input.length) != expected) {
      throw tf::TypeError("input has " + std::to_string(input.length) + " elements but shape [" +
                          std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", " + std::to_string(shape[2]) +
                          ", " + std::to_string(shape[3]) + "] needs " + std::to_string(expected));
    }
  } catch (...) {
    rethrowAsJs(info.Env());
  }
}
}  // namespace

Napi::Value ModelWrap::PooledFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  FloatView input;
  std::vector<int64_t> shape;
  readImageBatch(info, input, shape);
  auto result = std::make_shared<at::Tensor>();
  return addonData(env).jobs->run(
      env, *model, [model, input, shape, result] { *result = model->pooledFeatures(input.data, shape); },
      [result](Napi::Env env) -> Napi::Value {
        auto out = Napi::Object::New(env);
        const auto& f = *result;
        out.Set("features", copyToFloat32Array(env, f.data_ptr<float>(), static_cast<size_t>(f.numel())));
        out.Set("batchSize", Napi::Number::New(env, static_cast<double>(f.size(0))));
        out.Set("dim", Napi::Number::New(env, static_cast<double>(f.size(1))));
        return out;
      },
      {info.This(), info[0]});
}

Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  FloatView input;
  std::vector<int64_t> shape;
  readImageBatch(info, input, shape);
  auto result = std::make_shared<tf::ForwardResult>();
  return addonData(env).jobs->run(
      env, *model, [model, input, shape, result] { *result = model->forward(input.data, shape); },
      [result](Napi::Env env) -> Napi::Value {
        auto out = Napi::Object::New(env);
        const auto& l = result->logits;
        const auto& e = result->embedding;
        out.Set("logits", copyToFloat32Array(env, l.data_ptr<float>(), static_cast<size_t>(l.numel())));
        out.Set("embedding", copyToFloat32Array(env, e.data_ptr<float>(), static_cast<size_t>(e.numel())));
        out.Set("batchSize", Napi::Number::New(env, static_cast<double>(l.size(0))));
        out.Set("numClasses", Napi::Number::New(env, static_cast<double>(l.size(1))));
        out.Set("embeddingSize", Napi::Number::New(env, static_cast<double>(e.size(1))));
        return out;
      },
      {info.This(), info[0]});
}

Napi::Value ModelWrap::SetTraining(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  bool training = false;
  try {
    training = readBool(info[0], "training");
  } catch (...) {
    rethrowAsJs(env);
  }
  return addonData(env).jobs->run(
      env, *model, [model, training] { model->setTraining(training); },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info.This()});
}

Napi::Value ModelWrap::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  std::string path;
  try {
    path = readString(info[0], "path");
  } catch (...) {
    rethrowAsJs(env);
  }
  return addonData(env).jobs->run(
      env, *model, [model, path] { model->save(path); }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); },
      {info.This()});
}

Napi::Value ModelWrap::SetMetadata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  std::string metadata;
  try {
    if (!info[0].IsNull()) metadata = readString(info[0], "metadata");
  } catch (...) {
    rethrowAsJs(env);
  }
  model->setMetadata(std::move(metadata));
  return env.Undefined();
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  // Later calls see a disposed model at once. The model's thread runs jobs in order, so this empty job settles
  // after every call queued before it, the trainers' included; the model is freed when the last holder lets go.
  auto model = model_;
  release(env);
  return addonData(env).jobs->run(
      env, *model, [model] {}, [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info.This()});
}

Napi::Value ModelWrap::GetInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  auto out = Napi::Object::New(env);
  out.Set("path", model->path());
  out.Set("device", model->device().str());
  out.Set("parameterCount", Napi::Number::New(env, static_cast<double>(model->parameterCount())));
  out.Set("training", Napi::Boolean::New(env, model->training()));
  out.Set("inferenceOnly", Napi::Boolean::New(env, model->inferenceOnly()));
  out.Set("hasHead", Napi::Boolean::New(env, model->hasHead()));
  out.Set("inferenceOptimized", Napi::Boolean::New(env, model->inferenceOptimized()));
  out.Set("inferenceNote",
          model->inferenceNote().empty() ? env.Null() : Napi::String::New(env, model->inferenceNote()));
  const auto meta = model->metadata();
  out.Set("metadata", meta.empty() ? env.Null() : Napi::String::New(env, meta));
  return out;
}

Napi::Value ModelWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !model_); }

}  // namespace tfn
