#include "dist_wrap.h"

#include "../core/errors.h"
#include "addon_data.h"
#include "common.h"
#include "thread_jobs.h"
#include "trainer_wrap.h"

namespace tfn {

namespace {
tf::dist::ProcessGroupOptions readGroupOptions(const Napi::Value& v) {
  if (!v.IsObject() || v.IsArray()) throw tf::TypeError("Expected an object for `options`");
  const auto obj = v.As<Napi::Object>();
  tf::dist::ProcessGroupOptions o;
  const auto has = [&](const char* k) { return obj.Has(k) && !obj.Get(k).IsUndefined(); };
  if (has("masterAddr")) o.masterAddr = readString(obj.Get("masterAddr"), "masterAddr");
  if (has("port")) o.port = static_cast<int>(readInteger(obj.Get("port"), "port", 1, 65535));
  if (has("worldSize")) o.worldSize = static_cast<int>(readInteger(obj.Get("worldSize"), "worldSize", 1, 1 << 20));
  if (has("rank")) o.rank = static_cast<int>(readInteger(obj.Get("rank"), "rank", 0, (1 << 20) - 1));
  if (has("timeoutMs")) {
    o.timeout = std::chrono::milliseconds(readInteger(obj.Get("timeoutMs"), "timeoutMs", 1, int64_t{1} << 40));
  }
  if (has("useAgentStore")) o.useAgentStore = readBool(obj.Get("useAgentStore"), "useAgentStore");
  if (has("restartCount")) {
    o.restartCount = static_cast<int>(readInteger(obj.Get("restartCount"), "restartCount", 0, 1 << 20));
  }
  if (has("backend")) {
    const auto b = readString(obj.Get("backend"), "backend");
    if (b == "gloo") {
      o.backend = tf::dist::Backend::Gloo;
    } else if (b == "nccl") {
      o.backend = tf::dist::Backend::Nccl;
    } else {
      throw tf::RangeError("backend must be 'gloo' or 'nccl', received '" + b + "'");
    }
  }
  if (has("cudaDevice")) o.cudaDevice = static_cast<int>(readInteger(obj.Get("cudaDevice"), "cudaDevice", 0, 1023));
  if (has("interfaces")) {
    const auto list = obj.Get("interfaces");
    if (!list.IsArray()) throw tf::TypeError("Expected an array of strings for `interfaces`");
    const auto arr = list.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) o.interfaces.push_back(readString(arr.Get(i), "interfaces[]"));
  }
  if (o.rank >= o.worldSize) {
    throw tf::RangeError("rank must be below worldSize (" + std::to_string(o.worldSize) + "), received " +
                         std::to_string(o.rank));
  }
  return o;
}

tf::dist::ReduceOp readOp(const Napi::Value& v) {
  if (v.IsUndefined()) return tf::dist::ReduceOp::Sum;
  const auto s = readString(v, "op");
  if (s == "sum") return tf::dist::ReduceOp::Sum;
  if (s == "avg") return tf::dist::ReduceOp::Avg;
  if (s == "max") return tf::dist::ReduceOp::Max;
  if (s == "min") return tf::dist::ReduceOp::Min;
  throw tf::RangeError("op must be one of 'sum', 'avg', 'max', 'min', received '" + s + "'");
}

// A copy of a Float32Array as a CPU tensor (the collective works in place on it).
at::Tensor copyIn(const Napi::Value& v, const char* name) {
  const auto view = readFloat32Array(v, name);
  auto t = at::empty({static_cast<int64_t>(view.length)}, at::kFloat);
  if (view.length) std::memcpy(t.data_ptr<float>(), view.data, view.length * sizeof(float));
  return t;
}

Napi::Value tensorOut(Napi::Env env, const at::Tensor& t) {
  return copyToFloat32Array(env, t.data_ptr<float>(), static_cast<size_t>(t.numel()));
}

Napi::Value undefinedResult(Napi::Env env) { return env.Undefined(); }
}  // namespace

Napi::Function ProcessGroupWrap::Init(Napi::Env env, Napi::Object exports) {
  auto cls = DefineClass(
      env, "ProcessGroup",
      {InstanceMethod<&ProcessGroupWrap::Join>("join"), InstanceMethod<&ProcessGroupWrap::AllReduce>("allReduce"),
       InstanceMethod<&ProcessGroupWrap::Broadcast>("broadcast"), InstanceMethod<&ProcessGroupWrap::Barrier>("barrier"),
       InstanceMethod<&ProcessGroupWrap::AttachTrainer>("attachTrainer"),
       InstanceMethod<&ProcessGroupWrap::SyncStats>("syncStats"), InstanceMethod<&ProcessGroupWrap::Destroy>("destroy"),
       InstanceAccessor<&ProcessGroupWrap::GetRank>("rank"),
       InstanceAccessor<&ProcessGroupWrap::GetWorldSize>("worldSize")});
  exports.Set("ProcessGroup", cls);
  return cls;
}

ProcessGroupWrap::ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) throw Napi::TypeError::New(env, "ProcessGroup must be called with new");
  try {
    options_ = readGroupOptions(info[0]);
  } catch (...) {
    rethrowAsJs(env);
  }
}

std::shared_ptr<tf::dist::ProcessGroup> ProcessGroupWrap::group(Napi::Env env) const {
  if (!group_) {
    auto err =
        Napi::Error::New(env, joining_ ? "the process group is still joining" : "the process group is not joined");
    err.Set("code", Napi::String::New(env, "ERR_DISTRIBUTED"));
    throw err;
  }
  return group_;
}

Napi::Value ProcessGroupWrap::Join(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (group_ || joining_) {
    auto err = Napi::Error::New(env, "join() was already called on this process group");
    err.Set("code", Napi::String::New(env, "ERR_DISTRIBUTED"));
    throw err;
  }
  joining_ = true;
  auto joined = std::make_shared<std::shared_ptr<tf::dist::ProcessGroup>>();
  auto options = options_;
  return addonData(env).jobs->run(
      env, *executor_, [joined, options] { *joined = tf::dist::ProcessGroup::join(options); },
      [this, joined](Napi::Env env) -> Napi::Value {
        joining_ = false;
        group_ = *joined;
        return env.Undefined();
      },
      {info.This()});
}

Napi::Value ProcessGroupWrap::AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = this->group(env);
  at::Tensor t;
  tf::dist::ReduceOp op;
  try {
    t = copyIn(info[0], "data");
    op = readOp(info[1]);
  } catch (...) {
    rethrowAsJs(env);
  }
  auto tensor = std::make_shared<at::Tensor>(t);
  return addonData(env).jobs->run(
      env, *executor_, [group, tensor, op] { group->allReduce(*tensor, op); },
      [tensor](Napi::Env env) { return tensorOut(env, *tensor); }, {info.This()});
}

Napi::Value ProcessGroupWrap::Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = this->group(env);
  at::Tensor t;
  int root = 0;
  try {
    t = copyIn(info[0], "data");
    if (!info[1].IsUndefined()) root = static_cast<int>(readInteger(info[1], "root", 0, group->worldSize() - 1));
  } catch (...) {
    rethrowAsJs(env);
  }
  auto tensor = std::make_shared<at::Tensor>(t);
  return addonData(env).jobs->run(
      env, *executor_, [group, tensor, root] { group->broadcast(*tensor, root); },
      [tensor](Napi::Env env) { return tensorOut(env, *tensor); }, {info.This()});
}

Napi::Value ProcessGroupWrap::Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = this->group(env);
  return addonData(env).jobs->run(env, *executor_, [group] { group->barrier(); }, undefinedResult, {info.This()});
}

Napi::Value ProcessGroupWrap::AttachTrainer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = this->group(env);
  if (!TrainerWrap::IsInstance(info[0])) {
    auto err = Napi::TypeError::New(env, "Expected a Trainer for `trainer`");
    err.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    throw err;
  }
  auto trainer = Napi::ObjectWrap<TrainerWrap>::Unwrap(info[0].As<Napi::Object>())->trainer(env);
  tf::dist::BucketOptions bo;
  try {
    if (info[1].IsObject()) {
      const auto o = info[1].As<Napi::Object>();
      if (o.Has("bucketBytes") && !o.Get("bucketBytes").IsUndefined()) {
        bo.bucketBytes = readInteger(o.Get("bucketBytes"), "bucketBytes", 1, int64_t{1} << 40);
      }
      if (o.Has("firstBucketBytes") && !o.Get("firstBucketBytes").IsUndefined()) {
        bo.firstBucketBytes = readInteger(o.Get("firstBucketBytes"), "firstBucketBytes", 1, int64_t{1} << 40);
      }
    } else if (!info[1].IsUndefined()) {
      throw tf::TypeError("Expected an object for `options`");
    }
  } catch (...) {
    rethrowAsJs(env);
  }
  auto reducer = std::make_shared<std::shared_ptr<tf::dist::BucketReducer>>();
  return addonData(env).jobs->run(
      env, *trainer->model(),
      [group, trainer, reducer, bo] {
        // Every rank starts from rank 0's weights and BatchNorm statistics.
        auto tensors = trainer->model()->parameters();
        for (auto& b : trainer->model()->buffers()) tensors.push_back(b);
        tf::dist::broadcastTensors(*group, tensors, 0);
        *reducer = std::make_shared<tf::dist::BucketReducer>(group, trainer->trainableParameters(), bo);
        trainer->setGradientSync(*reducer);
      },
      [this, reducer](Napi::Env env) -> Napi::Value {
        reducer_ = *reducer;
        const auto sizes = reducer_->bucketSizes();
        auto out = Napi::Array::New(env, sizes.size());
        for (size_t i = 0; i < sizes.size(); ++i) out.Set(i, Napi::Number::New(env, static_cast<double>(sizes[i])));
        return out;
      },
      {info.This(), info[0]});
}

Napi::Value ProcessGroupWrap::SyncStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto s = reducer_ ? reducer_->stats() : tf::dist::SyncStats{};
  auto out = Napi::Object::New(env);
  out.Set("steps", Napi::Number::New(env, static_cast<double>(s.steps)));
  out.Set("buckets", Napi::Number::New(env, static_cast<double>(s.buckets)));
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(s.bytes)));
  out.Set("bucketsInBackward", Napi::Number::New(env, static_cast<double>(s.bucketsInBackward)));
  out.Set("bucketsDoneInBackward", Napi::Number::New(env, static_cast<double>(s.bucketsDoneInBackward)));
  out.Set("collectives", Napi::Number::New(env, static_cast<double>(s.collectives)));
  out.Set("seconds", Napi::Number::New(env, s.seconds));
  out.Set("inBackwardSeconds", Napi::Number::New(env, s.inBackwardSeconds));
  return out;
}

Napi::Value ProcessGroupWrap::Destroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = group_;
  group_.reset();
  if (!group) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  // Queued after the calls in flight on the group's thread. A trainer still attached fails its next step.
  return addonData(env).jobs->run(env, *executor_, [group] { group->destroy(); }, undefinedResult, {info.This()});
}

Napi::Value ProcessGroupWrap::GetRank(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), options_.rank);
}
Napi::Value ProcessGroupWrap::GetWorldSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), options_.worldSize);
}

}  // namespace tfn
