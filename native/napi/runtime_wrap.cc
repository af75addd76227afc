#include "runtime_wrap.h"

#include "../core/runtime.h"
#include "../dist/process_group.h"
#include "common.h"

namespace tfn {

namespace {
// sync runtimeInfo(): versions, devices and threads of the native side. Never throws.
Napi::Value RuntimeInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto r = tf::runtimeInfo();
  auto out = Napi::Object::New(env);
  out.Set("torchVersion", r.torchVersion);
  out.Set("cudaCompiled", r.cudaCompiled);
  out.Set("cudaAvailable", r.cudaAvailable);
  out.Set("cudaDeviceCount", r.cudaDeviceCount);
  out.Set("tensorrtCompiled", r.tensorrtCompiled);
  out.Set("tensorrtVersion", r.tensorrtVersion);
  out.Set("distributedCompiled", tf::dist::distributedCompiled());
  out.Set("distributedNote", tf::dist::distributedNote());
  const auto backends = tf::dist::distributedBackends();
  auto list = Napi::Array::New(env, backends.size());
  for (size_t i = 0; i < backends.size(); ++i) list.Set(static_cast<uint32_t>(i), backends[i]);
  out.Set("distributedBackends", list);
  out.Set("threads", r.threads);
  out.Set("jitOptimize", r.jitOptimize);
  out.Set("parallelInfo", r.parallelInfo);
  out.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return out;
}

// sync setThreads(n): throws RangeError for n outside 1..1024.
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    tf::setThreads(static_cast<int>(readInteger(info[0], "threads", 1, 1024)));
  } catch (...) {
    rethrowAsJs(env);
  }
  return env.Undefined();
}
// sync manualSeed(seed): seeds libtorch's random generators (dropout, init). Throws RangeError.
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    tf::manualSeed(static_cast<uint64_t>(readInteger(info[0], "seed", 0, (int64_t{1} << 53) - 1)));
  } catch (...) {
    rethrowAsJs(env);
  }
  return env.Undefined();
}
// sync setJitOptimize(enabled): the TorchScript graph optimizer switch for later calls. Throws TypeError.
Napi::Value SetJitOptimize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    tf::setJitOptimize(readBool(info[0], "enabled"));
  } catch (...) {
    rethrowAsJs(env);
  }
  return env.Undefined();
}
}  // namespace

void InitRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("runtimeInfo", Napi::Function::New(env, RuntimeInfo, "runtimeInfo"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("setJitOptimize", Napi::Function::New(env, SetJitOptimize, "setJitOptimize"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
}

}  // namespace tfn
