// The addon's one instance-data slot per environment (main thread or worker): every class constructor and the
// channel that settles promises of jobs run on model threads. Node-API gives each environment a single slot, so
// everything per-environment lives here.
#pragma once

#include <napi.h>

#include <memory>

namespace tfn {

class ThreadJobs;

struct AddonData {
  Napi::FunctionReference modelCtor;
  Napi::FunctionReference trainerCtor;
  Napi::FunctionReference engineCtor;  // TensorRTEngine; empty without TensorRT
  std::shared_ptr<ThreadJobs> jobs;
};

// Creates this environment's AddonData (once, from the module's Init); freed when the environment goes.
AddonData& createAddonData(Napi::Env env);
// This environment's AddonData. Throws a JS Error if Init has not run.
AddonData& addonData(Napi::Env env);

// Native objects reach a wrapper's constructor as its one argument: an External holding a pointer to a
// std::shared_ptr<T>, tagged so that nothing else (a user's `new Model(x)`) passes for it.
template <class T>
Napi::External<std::shared_ptr<T>> wrapForConstructor(Napi::Env env, std::shared_ptr<T>* object,
                                                      const napi_type_tag& tag) {
  auto external = Napi::External<std::shared_ptr<T>>::New(env, object);
  external.TypeTag(&tag);
  return external;
}

// The object passed by wrapForConstructor, or null when v is anything else.
template <class T>
std::shared_ptr<T> unwrapConstructorArgument(const Napi::Value& v, const napi_type_tag& tag) {
  if (!v.IsExternal()) return nullptr;
  auto external = v.As<Napi::External<std::shared_ptr<T>>>();
  if (!external.CheckTypeTag(&tag)) return nullptr;
  return *external.Data();
}

}  // namespace tfn
