#include "common.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <cstring>
#include <new>

#include "../core/errors.h"
#include "../core/torch_errors.h"

namespace tfn {

JsErrorInfo currentException() {
  using Kind = JsErrorInfo::Kind;
  try {
    throw;
  } catch (const tf::CodedError& e) {
    return {e.kind(), e.code(), e.message()};
  } catch (const c10::Error& e) {
    return {Kind::Error, "ERR_NATIVE", tf::shortMessage(e)};
  } catch (const std::bad_alloc&) {
    return {Kind::Error, "ERR_OUT_OF_MEMORY", "out of memory"};
  } catch (const std::exception& e) {
    return {Kind::Error, "ERR_NATIVE", e.what()};
  } catch (...) {
    return {Kind::Error, "ERR_NATIVE", "unknown native error"};
  }
}

Napi::Error makeError(Napi::Env env, const JsErrorInfo& info) {
  Napi::Error err;
  switch (info.kind) {
    case JsErrorInfo::Kind::Type:
      err = Napi::TypeError::New(env, info.message);
      break;
    case JsErrorInfo::Kind::Range:
      err = Napi::RangeError::New(env, info.message);
      break;
    default:
      err = Napi::Error::New(env, info.message);
  }
  err.Set("code", Napi::String::New(env, info.code));
  return err;
}

void rethrowAsJs(Napi::Env env) { throw makeError(env, currentException()); }

std::string readString(const Napi::Value& v, const std::string& name) {
  if (!v.IsString()) throw tf::TypeError("Expected a string for `" + name + "`");
  return v.As<Napi::String>().Utf8Value();
}

double readNumber(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) throw tf::TypeError("Expected a number for `" + name + "`");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d))
    throw tf::RangeError("Expected a finite number for `" + name + "`, received " + std::to_string(d));
  return d;
}

int64_t readInteger(const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) throw tf::TypeError("Expected an integer for `" + name + "`");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    throw tf::RangeError("Expected an integer between " + std::to_string(lo) + " and " + std::to_string(hi) + " for `" +
                         name + "`, received " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

bool readBool(const Napi::Value& v, const std::string& name) {
  if (!v.IsBoolean()) throw tf::TypeError("Expected a boolean for `" + name + "`");
  return v.As<Napi::Boolean>().Value();
}

std::vector<int64_t> readShape(const Napi::Value& v, const std::string& name) {
  if (!v.IsArray()) throw tf::TypeError("Expected an array of integers for `" + name + "`");
  const auto arr = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    shape.push_back(readInteger(arr.Get(i), name + "[" + std::to_string(i) + "]", 1, 1 << 20));
  }
  return shape;
}

FloatView readFloat32Array(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw tf::TypeError("Expected a Float32Array for `" + name + "`");
  }
  const auto arr = v.As<Napi::Float32Array>();
  return {arr.Data(), arr.ElementLength()};
}

Napi::Float32Array copyToFloat32Array(Napi::Env env, const float* data, size_t n) {
  auto out = Napi::Float32Array::New(env, n);
  if (n > 0) std::memcpy(out.Data(), data, n * sizeof(float));
  return out;
}

PromiseWorker::PromiseWorker(Napi::Env env, const char* name, Job execute, Resolver resolve,
                             const std::vector<Napi::Value>& keepAlive)
    : Napi::AsyncWorker(env, name),
      deferred_(Napi::Promise::Deferred::New(env)),
      execute_(std::move(execute)),
      resolve_(std::move(resolve)) {
  for (const auto& v : keepAlive) keepAlive_.push_back(Napi::Persistent(v));
}

Napi::Promise PromiseWorker::Run(Napi::Env env, const char* name, Job execute, Resolver resolve,
                                 const std::vector<Napi::Value>& keepAlive) {
  auto* worker = new PromiseWorker(env, name, std::move(execute), std::move(resolve), keepAlive);
  auto promise = worker->deferred_.Promise();
  worker->Queue();
  return promise;
}

void PromiseWorker::Execute() {
  // No N-API calls here: this runs on a thread-pool thread.
  try {
    execute_();
  } catch (...) {
    failed_ = true;
    error_ = currentException();
  }
}

void PromiseWorker::OnOK() { settlePromise(Env(), deferred_, failed_ ? &error_ : nullptr, resolve_); }

void settlePromise(Napi::Env env, const Napi::Promise::Deferred& deferred, const JsErrorInfo* error,
                   const std::function<Napi::Value(Napi::Env)>& resolve) {
  try {
    Napi::HandleScope scope(env);
    if (error) {
      deferred.Reject(makeError(env, *error).Value());
      return;
    }
    try {
      deferred.Resolve(resolve(env));
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    } catch (...) {
      deferred.Reject(makeError(env, currentException()).Value());
    }
  } catch (...) {
    // The environment is going away; there is no one left to tell.
  }
}

void PromiseWorker::OnError(const Napi::Error& e) {
  try {
    deferred_.Reject(e.Value());
  } catch (...) {
    // As in OnOK.
  }
}

}  // namespace tfn
