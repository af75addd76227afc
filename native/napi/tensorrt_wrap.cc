// Empty unless the addon is built with TensorRT (CMake defines TF_WITH_TENSORRT only when it finds TensorRT).
#ifdef TF_WITH_TENSORRT

#include "tensorrt_wrap.h"

#include <cmath>

#include "../core/errors.h"
#include "../tensorrt/cuda_util.h"
#include "../tensorrt/trt_builder.h"
#include "../tensorrt/trt_types.h"
#include "addon_data.h"
#include "common.h"

namespace tfn {

namespace {
// Marks the External that loadTensorRTEngine() passes to the constructor: nothing else can construct an engine.
constexpr napi_type_tag kEngineTag = {0x3b8e6a0f52d14c99ULL, 0xa4170e2bd6c93f58ULL};

Napi::Array toArray(Napi::Env env, const std::vector<int64_t>& v) {
  auto arr = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) arr.Set(i, Napi::Number::New(env, static_cast<double>(v[i])));
  return arr;
}

Napi::Array toArray(Napi::Env env, const std::vector<std::string>& v) {
  auto arr = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) arr.Set(i, Napi::String::New(env, v[i]));
  return arr;
}

std::string computeCapability(int major, int minor) { return std::to_string(major) + "." + std::to_string(minor); }

// sync tensorrtInfo(): TensorRT versions (headers compiled against, library loaded), CUDA versions and visible GPUs.
// Never throws: without a driver or GPU `gpus` is empty and `cudaError` says why.
Napi::Value TensorRTInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("headerVersion", tf::trt::headerVersion());
  out.Set("libraryVersion", tf::trt::libraryVersion());
  out.Set("cudaRuntimeVersion", tf::trt::cudaRuntimeVersion());
  out.Set("cudaDriverVersion", tf::trt::cudaDriverVersion());
  std::string error;
  const auto gpus = tf::trt::listGpus(&error);
  auto list = Napi::Array::New(env, gpus.size());
  for (uint32_t i = 0; i < gpus.size(); ++i) {
    auto g = Napi::Object::New(env);
    g.Set("index", gpus[i].index);
    g.Set("name", gpus[i].name);
    g.Set("computeCapability", computeCapability(gpus[i].computeMajor, gpus[i].computeMinor));
    g.Set("totalMemory", Napi::Number::New(env, static_cast<double>(gpus[i].totalMemory)));
    g.Set("multiprocessors", gpus[i].multiprocessors);
    list.Set(i, g);
  }
  out.Set("gpus", list);
  out.Set("cudaError", error.empty() ? env.Null() : Napi::String::New(env, error));
  return out;
}

// Calls the JS onLog(severity, message) from the builder's thread; released when the build job is destroyed.
class LogForwarder {
 public:
  LogForwarder(Napi::Env env, Napi::Function fn)
      : tsfn_(Napi::ThreadSafeFunction::New(env, fn, "trt-flowers:tensorrt-log", 0, 1)) {}
  ~LogForwarder() { tsfn_.Release(); }
  LogForwarder(const LogForwarder&) = delete;
  LogForwarder& operator=(const LogForwarder&) = delete;

  void post(int severity, const std::string& message) {
    auto* item = new std::pair<int, std::string>(severity, message);
    const napi_status status =
        tsfn_.NonBlockingCall(item, [](Napi::Env env, Napi::Function fn, std::pair<int, std::string>* data) {
          std::unique_ptr<std::pair<int, std::string>> owned(data);
          if (env == nullptr || fn.IsEmpty()) return;
          try {
            fn.Call({Napi::Number::New(env, owned->first), Napi::String::New(env, owned->second)});
          } catch (...) {
            // A throwing onLog must not break the build.
          }
        });
    if (status != napi_ok) delete item;
  }

 private:
  Napi::ThreadSafeFunction tsfn_;
};

Napi::Value optional(const Napi::Object& o, const char* key) { return o.Has(key) ? o.Get(key) : Napi::Value(); }

bool present(const Napi::Value& v) { return !v.IsEmpty() && !v.IsUndefined() && !v.IsNull(); }

// async buildTensorRTEngine(options): Promise<result>. See src/binding/types.ts for the options. Rejects with
// ERR_MODEL_LOAD (ONNX unreadable or not a classifier), ERR_OUT_OF_RANGE (switches this TensorRT lacks, bad batch),
// ERR_BACKEND_UNAVAILABLE (no GPU), ERR_INFERENCE (TensorRT could not build, or cancelled), ERR_SAVE.
Napi::Value BuildTensorRTEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto request = std::make_shared<tf::trt::BuildRequest>();
  std::shared_ptr<LogForwarder> forwarder;
  std::vector<Napi::Value> keepAlive;
  try {
    if (!info[0].IsObject()) throw tf::TypeError("Expected an options object for `buildTensorRTEngine`");
    const auto o = info[0].As<Napi::Object>();
    request->onnxPath = readString(o.Get("onnxPath"), "onnxPath");
    request->planPath = readString(o.Get("planPath"), "planPath");
    const auto device = optional(o, "device");
    request->device = tf::trt::cudaDeviceIndex(present(device) ? readString(device, "device") : "cuda");
    request->batch.min = readInteger(o.Get("minBatch"), "minBatch", 1, tf::trt::kMaxProfileBatch);
    request->batch.opt = readInteger(o.Get("optBatch"), "optBatch", 1, tf::trt::kMaxProfileBatch);
    request->batch.max = readInteger(o.Get("maxBatch"), "maxBatch", 1, tf::trt::kMaxProfileBatch);
    if (present(optional(o, "imageSize"))) request->imageSize = readInteger(o.Get("imageSize"), "imageSize", 8, 4096);
    if (present(optional(o, "workspaceBytes"))) {
      const double w = readNumber(o.Get("workspaceBytes"), "workspaceBytes");
      if (w < 0 || w > 9007199254740991.0 || std::floor(w) != w) {
        throw tf::RangeError("Expected a non-negative integer for `workspaceBytes`");
      }
      request->workspaceBytes = static_cast<uint64_t>(w);
    }
    if (present(optional(o, "timingCachePath"))) {
      request->timingCachePath = readString(o.Get("timingCachePath"), "timingCachePath");
    }
    if (present(optional(o, "optimizationLevel"))) {
      request->optimizationLevel = static_cast<int>(readInteger(o.Get("optimizationLevel"), "optimizationLevel", 0, 5));
    }
    const auto flag = [&](const char* key) { return present(optional(o, key)) && readBool(o.Get(key), key); };
    request->precision.stronglyTyped = flag("stronglyTyped");
    request->precision.fp16Flag = flag("fp16");
    request->precision.int8Flag = flag("int8");
    if (present(optional(o, "calibration"))) {
      if (!o.Get("calibration").IsObject()) throw tf::TypeError("Expected an object for `calibration`");
      const auto c = o.Get("calibration").As<Napi::Object>();
      tf::trt::LegacyCalibration cal;
      cal.dataFile = readString(c.Get("dataFile"), "calibration.dataFile");
      cal.batchSize = readInteger(c.Get("batchSize"), "calibration.batchSize", 1, 1024);
      cal.batches = readInteger(c.Get("batches"), "calibration.batches", 1, 1 << 20);
      cal.cachePath = readString(c.Get("cachePath"), "calibration.cachePath");
      cal.readCache = !present(optional(c, "readCache")) || readBool(c.Get("readCache"), "calibration.readCache");
      request->calibration = cal;
      request->precision.legacyCalibrator = true;
    }
    if (present(optional(o, "logSeverity"))) {
      request->logSeverity = static_cast<int>(readInteger(o.Get("logSeverity"), "logSeverity", 0, 4));
    }
    if (present(optional(o, "onLog"))) {
      if (!o.Get("onLog").IsFunction()) throw tf::TypeError("Expected a function for `onLog`");
      forwarder = std::make_shared<LogForwarder>(env, o.Get("onLog").As<Napi::Function>());
    }
    if (present(optional(o, "cancel"))) {
      const auto c = o.Get("cancel");
      if (!c.IsTypedArray() || c.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
          c.As<Napi::Int32Array>().ElementLength() < 1) {
        throw tf::TypeError("Expected an Int32Array of length 1 for `cancel`");
      }
      request->cancel = c.As<Napi::Int32Array>().Data();
      keepAlive.push_back(c);
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    rethrowAsJs(env);
  }
  if (forwarder) {
    request->log = [forwarder](int severity, const std::string& m) { forwarder->post(severity, m); };
  }
  auto result = std::make_shared<tf::trt::BuildResult>();
  return PromiseWorker::Run(
      env, "trt-flowers:buildTensorRTEngine",
      [request, result, forwarder]() mutable {
        *result = tf::trt::buildPlan(*request);
        // Drop the JS callback now: nothing logs after the build.
        request->log = nullptr;
        forwarder.reset();
      },
      [result](Napi::Env env) -> Napi::Value {
        const auto& r = *result;
        auto out = Napi::Object::New(env);
        out.Set("planPath", r.planPath);
        out.Set("planBytes", Napi::Number::New(env, static_cast<double>(r.planBytes)));
        out.Set("tensorrtVersion", r.tensorrtVersion);
        out.Set("gpuName", r.gpuName);
        out.Set("computeCapability", computeCapability(r.computeMajor, r.computeMinor));
        out.Set("inputName", r.inputName);
        out.Set("inputDims", toArray(env, r.inputDims));
        out.Set("outputNames", toArray(env, r.outputNames));
        out.Set("timingCacheLoaded", r.timingCacheLoaded);
        out.Set("timingCacheSaved", r.timingCacheSaved);
        out.Set("calibrationCacheRead", r.calibrationCacheRead);
        out.Set("calibrationCacheWritten", r.calibrationCacheWritten);
        out.Set("calibrationBatches", Napi::Number::New(env, static_cast<double>(r.calibrationBatches)));
        out.Set("networkLayers", r.networkLayers);
        out.Set("seconds", r.seconds);
        return out;
      },
      keepAlive);
}
}  // namespace

void TensorRTEngineWrap::Init(Napi::Env env, Napi::Object exports) {
  auto cls = DefineClass(
      env, "TensorRTEngine",
      {InstanceMethod<&TensorRTEngineWrap::Infer>("infer"), InstanceMethod<&TensorRTEngineWrap::Dispose>("dispose"),
       InstanceAccessor<&TensorRTEngineWrap::GetInfo>("info"),
       InstanceAccessor<&TensorRTEngineWrap::IsDisposed>("disposed")});
  addonData(env).engineCtor = Napi::Persistent(cls);
  exports.Set("TensorRTEngine", cls);
  exports.Set("loadTensorRTEngine", Napi::Function::New(env, &TensorRTEngineWrap::Load, "loadTensorRTEngine"));
  exports.Set("buildTensorRTEngine", Napi::Function::New(env, &BuildTensorRTEngine, "buildTensorRTEngine"));
  exports.Set("tensorrtInfo", Napi::Function::New(env, &TensorRTInfo, "tensorrtInfo"));
}

TensorRTEngineWrap::TensorRTEngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorRTEngineWrap>(info) {
  engine_ = unwrapConstructorArgument<tf::trt::TrtEngine>(info[0], kEngineTag);
  if (!engine_) {
    throw Napi::TypeError::New(info.Env(),
                               "TensorRTEngine cannot be constructed directly: use loadTensorRTEngine(path, device)");
  }
  externalBytes_ = static_cast<int64_t>(engine_->info().planBytes);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), externalBytes_);
}

TensorRTEngineWrap::~TensorRTEngineWrap() { engine_.reset(); }

void TensorRTEngineWrap::Finalize(Napi::Env env) { release(env); }

void TensorRTEngineWrap::release(Napi::Env env) {
  if (!engine_) return;
  engine_.reset();
  Napi::MemoryManagement::AdjustExternalMemory(env, -externalBytes_);
  externalBytes_ = 0;
}

std::shared_ptr<tf::trt::TrtEngine> TensorRTEngineWrap::engine(Napi::Env env) const {
  if (!engine_) {
    auto err = Napi::Error::New(env, "the TensorRT engine has been disposed");
    err.Set("code", Napi::String::New(env, "ERR_DISPOSED"));
    throw err;
  }
  return engine_;
}

Napi::Value TensorRTEngineWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int device = 0;
  tf::trt::EngineOptions options;
  try {
    path = readString(info[0], "path");
    device = tf::trt::cudaDeviceIndex(info[1].IsUndefined() ? "cuda" : readString(info[1], "device"));
    if (!info[2].IsUndefined()) {
      if (!info[2].IsObject()) throw tf::TypeError("Expected an object for `options`");
      const auto o = info[2].As<Napi::Object>();
      if (present(optional(o, "cudaGraph"))) options.cudaGraph = readBool(o.Get("cudaGraph"), "cudaGraph");
      if (present(optional(o, "contexts"))) {
        options.maxContexts = static_cast<int>(readInteger(o.Get("contexts"), "contexts", 1, 64));
      }
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    rethrowAsJs(env);
  }
  auto slot = std::make_shared<std::shared_ptr<tf::trt::TrtEngine>>();
  return PromiseWorker::Run(
      env, "trt-flowers:loadTensorRTEngine",
      [slot, path, device, options] { *slot = tf::trt::TrtEngine::load(path, device, options); },
      [slot](Napi::Env env) -> Napi::Value {
        return addonData(env).engineCtor.New({wrapForConstructor(env, slot.get(), kEngineTag)});
      },
      {});
}

Napi::Value TensorRTEngineWrap::Infer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto engine = this->engine(env);
  FloatView input;
  std::vector<int64_t> shape;
  try {
    input = readFloat32Array(info[0], "input");
    shape = readShape(info[1], "shape");
    int64_t expected = 1;
    for (const int64_t d : shape) expected *= d;
    if (static_cast<int64_t>(input.length) != expected) {
      throw tf::TypeError("input has " + std::to_string(input.length) + " elements but shape " +
                          tf::trt::formatDims(shape) + " needs " + std::to_string(expected));
    }
  } catch (...) {
    rethrowAsJs(env);
  }
  auto result = std::make_shared<tf::trt::InferResult>();
  return PromiseWorker::Run(
      env, "trt-flowers:tensorrtInfer", [engine, input, shape, result] { *result = engine->infer(input.data, shape); },
      [result](Napi::Env env) -> Napi::Value {
        const auto& r = *result;
        auto out = Napi::Object::New(env);
        out.Set("logits", copyToFloat32Array(env, r.logits.data(), r.logits.size()));
        out.Set("embedding", copyToFloat32Array(env, r.embedding.data(), r.embedding.size()));
        out.Set("batchSize", Napi::Number::New(env, static_cast<double>(r.batchSize)));
        out.Set("numClasses", Napi::Number::New(env, static_cast<double>(r.numClasses)));
        out.Set("embeddingSize", Napi::Number::New(env, static_cast<double>(r.embeddingSize)));
        return out;
      },
      {info.This(), info[0]});
}

Napi::Value TensorRTEngineWrap::Dispose(const Napi::CallbackInfo& info) {
  // Runs in flight hold their own reference, so the engine is freed when the last one ends.
  release(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorRTEngineWrap::GetInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto engine = this->engine(env);
  const auto& i = engine->info();
  auto out = Napi::Object::New(env);
  out.Set("path", i.path);
  out.Set("device", "cuda:" + std::to_string(i.device));
  out.Set("gpuName", i.gpuName);
  out.Set("computeCapability", computeCapability(i.computeMajor, i.computeMinor));
  out.Set("tensorrtVersion", i.tensorrtVersion);
  out.Set("inputName", i.inputName);
  out.Set("inputDims", toArray(env, i.inputDims));
  out.Set("minBatch", Napi::Number::New(env, static_cast<double>(i.minBatch)));
  out.Set("optBatch", Napi::Number::New(env, static_cast<double>(i.optBatch)));
  out.Set("maxBatch", Napi::Number::New(env, static_cast<double>(i.maxBatch)));
  out.Set("imageSize", Napi::Number::New(env, static_cast<double>(i.imageSize)));
  out.Set("logitsName", i.logitsName);
  out.Set("embeddingName", i.embeddingName);
  out.Set("numClasses", Napi::Number::New(env, static_cast<double>(i.numClasses)));
  out.Set("embeddingSize", Napi::Number::New(env, static_cast<double>(i.embeddingSize)));
  out.Set("deviceMemoryBytes", Napi::Number::New(env, static_cast<double>(i.deviceMemoryBytes)));
  out.Set("planBytes", Napi::Number::New(env, static_cast<double>(i.planBytes)));
  out.Set("cudaGraph", i.cudaGraph);
  out.Set("cudaGraphFallbacks", engine->graphFallbacks());
  out.Set("contexts", i.maxContexts);
  out.Set("warnings", toArray(env, i.warnings));
  return out;
}

Napi::Value TensorRTEngineWrap::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !engine_);
}

}  // namespace tfn

#endif  // TF_WITH_TENSORRT
