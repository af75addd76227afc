// JS class `ProcessGroup`: `new ProcessGroup(options)` (sync, validates), then async join(); its collectives run on
// the group's own thread and a trainer's gradient averaging on the model's thread, never on the event loop.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/serial_executor.h"
#include "../dist/bucket_reducer.h"
#include "../dist/process_group.h"

namespace tfn {

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::Function Init(Napi::Env env, Napi::Object exports);
  // Sync constructor; throws TypeError/RangeError naming the bad option.
  explicit ProcessGroupWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Join(const Napi::CallbackInfo& info);       // async join(): DistributedError, BackendUnavailableError
  Napi::Value AllReduce(const Napi::CallbackInfo& info);  // async allReduce(Float32Array, op) -> new Float32Array
  Napi::Value Broadcast(const Napi::CallbackInfo& info);  // async broadcast(Float32Array, root) -> new Float32Array
  Napi::Value Barrier(const Napi::CallbackInfo& info);    // async barrier()
  // async attachTrainer(trainer, {bucketBytes, firstBucketBytes}): broadcasts rank 0's parameters and buffers, then
  // averages the trainer's gradients every step; resolves with the bucket sizes. Runs on the model's thread.
  Napi::Value AttachTrainer(const Napi::CallbackInfo& info);
  Napi::Value SyncStats(const Napi::CallbackInfo& info);  // sync syncStats(): time and bytes of gradient averaging
  Napi::Value Destroy(const Napi::CallbackInfo& info);    // async destroy(): idempotent
  Napi::Value GetRank(const Napi::CallbackInfo& info);
  Napi::Value GetWorldSize(const Napi::CallbackInfo& info);

  std::shared_ptr<tf::dist::ProcessGroup> group(Napi::Env env) const;

  tf::dist::ProcessGroupOptions options_;
  std::shared_ptr<tf::dist::ProcessGroup> group_;  // set when join() resolves
  std::shared_ptr<tf::dist::BucketReducer> reducer_;
  bool joining_ = false;
  std::shared_ptr<tf::SerialExecutor> executor_ = std::make_shared<tf::SerialExecutor>();
};

}  // namespace tfn
