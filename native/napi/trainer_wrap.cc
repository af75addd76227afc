#include "trainer_wrap.h"

#include "../core/errors.h"
#include "addon_data.h"
#include "common.h"
#include "model_wrap.h"
#include "thread_jobs.h"

namespace tfn {

namespace {
using OptionReader = void (*)(const Napi::Value& v, tf::TrainerOptions& o);

struct TrainerOption {
  const char* name;
  OptionReader read;
};

// Every option the native trainer takes, each read here once by name; their ranges are checked once, in the core
// (tf::Trainer's constructor), and the TypeScript config schema checks the user's values before they get here.
const TrainerOption kTrainerOptions[] = {
    {"optimizer", [](const Napi::Value& v, tf::TrainerOptions& o) { o.optimizer = readString(v, "optimizer"); }},
    {"learningRate",
     [](const Napi::Value& v, tf::TrainerOptions& o) { o.learningRate = readNumber(v, "learningRate"); }},
    {"weightDecay", [](const Napi::Value& v, tf::TrainerOptions& o) { o.weightDecay = readNumber(v, "weightDecay"); }},
    {"momentum", [](const Napi::Value& v, tf::TrainerOptions& o) { o.momentum = readNumber(v, "momentum"); }},
    {"gradClipNorm",
     [](const Napi::Value& v, tf::TrainerOptions& o) { o.gradClipNorm = readNumber(v, "gradClipNorm"); }},
    {"ceWeight", [](const Napi::Value& v, tf::TrainerOptions& o) { o.ceWeight = readNumber(v, "ceWeight"); }},
    {"contrastiveWeight",
     [](const Napi::Value& v, tf::TrainerOptions& o) { o.contrastiveWeight = readNumber(v, "contrastiveWeight"); }},
    {"margin", [](const Napi::Value& v, tf::TrainerOptions& o) { o.margin = readNumber(v, "margin"); }},
    {"labelSmoothing",
     [](const Napi::Value& v, tf::TrainerOptions& o) { o.labelSmoothing = readNumber(v, "labelSmoothing"); }},
    {"amp", [](const Napi::Value& v, tf::TrainerOptions& o) { o.amp = readBool(v, "amp"); }},
    {"gradScaler", [](const Napi::Value& v, tf::TrainerOptions& o) { o.gradScaler = readBool(v, "gradScaler"); }},
    {"channelsLast", [](const Napi::Value& v, tf::TrainerOptions& o) { o.channelsLast = readBool(v, "channelsLast"); }},
    {"emaDecay", [](const Napi::Value& v, tf::TrainerOptions& o) { o.emaDecay = readNumber(v, "emaDecay"); }},
    {"layerDecay", [](const Napi::Value& v, tf::TrainerOptions& o) { o.layerDecay = readNumber(v, "layerDecay"); }},
    {"initScale", [](const Napi::Value& v, tf::TrainerOptions& o) { o.scaler.initScale = readNumber(v, "initScale"); }},
    {"growthFactor",
     [](const Napi::Value& v, tf::TrainerOptions& o) { o.scaler.growthFactor = readNumber(v, "growthFactor"); }},
    {"backoffFactor",
     [](const Napi::Value& v, tf::TrainerOptions& o) { o.scaler.backoffFactor = readNumber(v, "backoffFactor"); }},
    {"growthInterval",
     [](const Napi::Value& v, tf::TrainerOptions& o) {
       o.scaler.growthInterval = readInteger(v, "growthInterval", 1, 1 << 30);
     }},
};

tf::TrainerOptions readOptions(const Napi::Value& v) {
  tf::TrainerOptions o;
  if (v.IsUndefined()) return o;
  if (!v.IsObject() || v.IsArray()) throw tf::TypeError("Expected an object for `options`");
  const auto obj = v.As<Napi::Object>();
  const auto keys = obj.GetPropertyNames();
  bool scalerGiven = false;
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    const TrainerOption* option = nullptr;
    for (const auto& candidate : kTrainerOptions) {
      if (k == candidate.name) option = &candidate;
    }
    if (!option) throw tf::TypeError("Unknown trainer option `" + k + "`");
    const Napi::Value value = obj.Get(k);
    if (value.IsUndefined()) continue;
    option->read(value, o);
    scalerGiven = scalerGiven || k == "gradScaler";
  }
  // Dynamic loss scaling goes with fp16 autocast unless asked otherwise.
  if (!scalerGiven) o.gradScaler = o.amp;
  return o;
}

Napi::Object stepToJs(Napi::Env env, const tf::StepResult& r, bool withLogits) {
  auto out = Napi::Object::New(env);
  out.Set("loss", r.loss);
  out.Set("ce", r.ce);
  out.Set("contrastive", r.contrastive);
  out.Set("positiveLoss", r.positiveLoss);
  out.Set("negativeLoss", r.negativeLoss);
  out.Set("correct", Napi::Number::New(env, static_cast<double>(r.correct)));
  out.Set("count", Napi::Number::New(env, static_cast<double>(r.count)));
  out.Set("gradNorm", r.gradNorm);
  out.Set("skipped", r.skipped);
  out.Set("scale", r.scale);
  if (withLogits) out.Set("logits", copyToFloat32Array(env, r.logits.data(), r.logits.size()));
  return out;
}
}  // namespace

Napi::Function TrainerWrap::Init(Napi::Env env, Napi::Object exports) {
  auto cls = DefineClass(
      env, "Trainer",
      {InstanceMethod<&TrainerWrap::Step>("step"), InstanceMethod<&TrainerWrap::Evaluate>("evaluate"),
       InstanceMethod<&TrainerWrap::HeadStep>("headStep"),
       InstanceMethod<&TrainerWrap::SetLearningRate>("setLearningRate"),
       InstanceAccessor<&TrainerWrap::GetLearningRate>("learningRate"),
       InstanceAccessor<&TrainerWrap::GetStepCount>("stepCount"),
       InstanceMethod<&TrainerWrap::LearningRateScales>("learningRateScales"),
       InstanceAccessor<&TrainerWrap::GetParameterGroupCount>("parameterGroupCount"),
       InstanceMethod<&TrainerWrap::SwapEma>("swapEma"), InstanceAccessor<&TrainerWrap::GetEmaUpdates>("emaUpdates"),
       InstanceAccessor<&TrainerWrap::GetEmaSwappedIn>("emaSwappedIn"),
       InstanceMethod<&TrainerWrap::SaveState>("saveState"), InstanceMethod<&TrainerWrap::LoadState>("loadState"),
       InstanceMethod<&TrainerWrap::Dispose>("dispose"), InstanceAccessor<&TrainerWrap::IsDisposed>("disposed")});
  addonData(env).trainerCtor = Napi::Persistent(cls);
  exports.Set("Trainer", cls);
  return cls;
}

TrainerWrap::TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) throw Napi::TypeError::New(env, "Trainer must be called with new");
  if (!ModelWrap::IsInstance(info[0])) {
    auto err = Napi::TypeError::New(env, "Expected a Model (from loadModel) for `model`");
    err.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    throw err;
  }
  auto model = Napi::ObjectWrap<ModelWrap>::Unwrap(info[0].As<Napi::Object>())->model(env);
  try {
    trainer_ = std::make_shared<tf::Trainer>(model, readOptions(info[1]));
  } catch (...) {
    rethrowAsJs(env);
  }
  model_ = Napi::Persistent(info[0].As<Napi::Object>());
}

bool TrainerWrap::IsInstance(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(addonData(v.Env()).trainerCtor.Value());
}

std::shared_ptr<tf::Trainer> TrainerWrap::trainer(Napi::Env env) const {
  if (!trainer_) {
    auto err = Napi::Error::New(env, "the trainer has been disposed");
    err.Set("code", Napi::String::New(env, "ERR_DISPOSED"));
    throw err;
  }
  return trainer_;
}

Napi::Value TrainerWrap::RunBatch(const Napi::CallbackInfo& info, bool train, bool pooled) {
  Napi::Env env = info.Env();
  auto trainer = this->trainer(env);
  auto batch = std::make_shared<tf::TripletBatch>();
  try {
    const auto q = readFloat32Array(info[0], "query");
    const auto p = readFloat32Array(info[1], "positive");
    const auto n = readFloat32Array(info[2], "negative");
    batch->shape = readShape(info[3], "shape");
    batch->pooled = pooled;
    const auto expected = static_cast<size_t>(pooled ? tf::checkFeatureShape(batch->shape, "shape")
                                                     : tf::checkImageShape(batch->shape, "shape"));
    const char* names[] = {"query", "positive", "negative"};
    const FloatView views[] = {q, p, n};
    for (int i = 0; i < 3; ++i) {
      if (views[i].length != expected) {
        throw tf::TypeError(std::string(names[i]) + " has " + std::to_string(views[i].length) +
                            " elements but the shape needs " + std::to_string(expected));
      }
    }
    if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw tf::TypeError("Expected an Int32Array for `labels`");
    }
    const auto labels = info[4].As<Napi::Int32Array>();
    batch->labels.assign(labels.Data(), labels.Data() + labels.ElementLength());
    batch->query = q.data;
    batch->positive = p.data;
    batch->negative = n.data;
  } catch (...) {
    rethrowAsJs(env);
  }
  auto result = std::make_shared<tf::StepResult>();
  return addonData(env).jobs->run(
      env, *trainer->model(),
      [trainer, batch, result, train] { *result = train ? trainer->step(*batch) : trainer->evaluate(*batch); },
      [result, train](Napi::Env env) -> Napi::Value { return stepToJs(env, *result, !train); },
      {info.This(), info[0], info[1], info[2]});
}

Napi::Value TrainerWrap::Step(const Napi::CallbackInfo& info) { return RunBatch(info, true, false); }
Napi::Value TrainerWrap::Evaluate(const Napi::CallbackInfo& info) { return RunBatch(info, false, false); }
Napi::Value TrainerWrap::HeadStep(const Napi::CallbackInfo& info) { return RunBatch(info, true, true); }

Napi::Value TrainerWrap::SetLearningRate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto trainer = this->trainer(env);
  try {
    trainer->setLearningRate(readNumber(info[0], "learningRate"));
  } catch (...) {
    rethrowAsJs(env);
  }
  return env.Undefined();
}

Napi::Value TrainerWrap::GetLearningRate(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), trainer(info.Env())->learningRate());
}

Napi::Value TrainerWrap::GetStepCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(trainer(info.Env())->stepCount()));
}

Napi::Value TrainerWrap::LearningRateScales(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& scales = trainer(env)->learningRateScales();
  auto out = Napi::Array::New(env, scales.size());
  for (size_t i = 0; i < scales.size(); ++i) {
    auto entry = Napi::Object::New(env);
    entry.Set("name", scales[i].name);
    entry.Set("depth", Napi::Number::New(env, static_cast<double>(scales[i].depth)));
    entry.Set("scale", scales[i].scale);
    out.Set(static_cast<uint32_t>(i), entry);
  }
  return out;
}

Napi::Value TrainerWrap::GetParameterGroupCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(trainer(info.Env())->parameterGroupCount()));
}

Napi::Value TrainerWrap::SwapEma(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto trainer = this->trainer(env);
  auto swapped = std::make_shared<bool>(false);
  return addonData(env).jobs->run(
      env, *trainer->model(), [trainer, swapped] { *swapped = trainer->swapEma(); },
      [swapped](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *swapped); }, {info.This()});
}

Napi::Value TrainerWrap::GetEmaUpdates(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(trainer(info.Env())->emaUpdates()));
}

Napi::Value TrainerWrap::GetEmaSwappedIn(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), trainer(info.Env())->emaSwappedIn());
}

Napi::Value TrainerWrap::SaveState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto trainer = this->trainer(env);
  std::string path;
  try {
    path = readString(info[0], "path");
  } catch (...) {
    rethrowAsJs(env);
  }
  return addonData(env).jobs->run(
      env, *trainer->model(), [trainer, path] { trainer->saveState(path); },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info.This()});
}

Napi::Value TrainerWrap::LoadState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto trainer = this->trainer(env);
  std::string path;
  try {
    path = readString(info[0], "path");
  } catch (...) {
    rethrowAsJs(env);
  }
  return addonData(env).jobs->run(
      env, *trainer->model(), [trainer, path] { trainer->loadState(path); },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info.This()});
}

Napi::Value TrainerWrap::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!trainer_) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  // As Model.dispose(): later calls see a disposed trainer at once, and this empty job on the model's thread settles
  // after the calls queued before it. The trainer (optimizer state) is freed with the job, on the JS thread.
  auto trainer = std::move(trainer_);
  std::vector<Napi::Value> keepAlive{info.This()};
  if (!model_.IsEmpty()) keepAlive.push_back(model_.Value());
  model_.Reset();
  return addonData(env).jobs->run(
      env, *trainer->model(), [trainer] {}, [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, keepAlive);
}

Napi::Value TrainerWrap::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !trainer_);
}

}  // namespace tfn
