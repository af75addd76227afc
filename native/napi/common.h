// Shared N-API helpers: argument readers that throw TypeError/RangeError naming the option, error mapping from
// core exceptions to JS errors with a `code`, and a Promise-returning worker that runs a job on the libuv thread
// pool (image work, loading). Jobs of a model run on the model's own thread instead (thread_jobs.h).
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "../core/errors.h"

namespace tfn {

// What a failed native job became; `code` is what the TypeScript layer maps to a typed error class.
struct JsErrorInfo {
  using Kind = tf::ErrorKind;
  Kind kind = Kind::Error;
  std::string code;
  std::string message;
};

// Classifies the exception currently being handled (call inside a catch block). Makes no N-API calls, so any
// thread may call it.
JsErrorInfo currentException();

Napi::Error makeError(Napi::Env env, const JsErrorInfo& info);

// Throws the JS error for the exception currently being handled (call inside a catch block).
[[noreturn]] void rethrowAsJs(Napi::Env env);

// Settles deferred: rejects with *error when it is set, else resolves with resolve(env), or rejects with what
// resolve threw. Never throws: when the environment is shutting down every N-API call fails, and an exception
// leaving a completion callback would abort the process.
void settlePromise(Napi::Env env, const Napi::Promise::Deferred& deferred, const JsErrorInfo* error,
                   const std::function<Napi::Value(Napi::Env)>& resolve);

// Argument readers. `name` is the option name shown in messages.
std::string readString(const Napi::Value& v, const std::string& name);
double readNumber(const Napi::Value& v, const std::string& name);
int64_t readInteger(const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi);
bool readBool(const Napi::Value& v, const std::string& name);
std::vector<int64_t> readShape(const Napi::Value& v, const std::string& name);

// A Float32Array (or Float32Array-sized view) read in place: data stays owned by JS and must be kept alive with
// a reference while a worker uses it.
struct FloatView {
  const float* data = nullptr;
  size_t length = 0;
};
FloatView readFloat32Array(const Napi::Value& v, const std::string& name);

// Runs `execute` on the libuv thread pool and settles a Promise: resolves with resolve(env) or rejects with the
// mapped error. `keepAlive` objects (the owner, input arrays) stay referenced until the job is done.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Job = std::function<void()>;
  using Resolver = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise Run(Napi::Env env, const char* name, Job execute, Resolver resolve,
                           const std::vector<Napi::Value>& keepAlive);

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  PromiseWorker(Napi::Env env, const char* name, Job execute, Resolver resolve,
                const std::vector<Napi::Value>& keepAlive);

  Napi::Promise::Deferred deferred_;
  Job execute_;
  Resolver resolve_;
  std::vector<Napi::Reference<Napi::Value>> keepAlive_;
  bool failed_ = false;
  JsErrorInfo error_;
};

// Copies n floats into a new Float32Array.
Napi::Float32Array copyToFloat32Array(Napi::Env env, const float* data, size_t n);

}  // namespace tfn
